import Foundation
import Testing
import MegatronBackend

/// The SIMD exp/erf/tanh against float64 libm on a dense grid; bounds as documented in VectorMath.
@Suite struct VectorMathTests {
    static let grid: [Float] = stride(from: -12.0, through: 12.0, by: 0.001).map { Float($0) }

    static func evaluate(_ f: (SIMD8<Float>) -> SIMD8<Float>, _ values: [Float]) -> [Float] {
        var out = values
        out.withUnsafeMutableBufferPointer { VectorMath.apply($0.baseAddress!, count: $0.count, f) }
        return out
    }

    @Test func expIsAccurateToAFewUlp() {
        let xs = stride(from: -87.0, through: 88.0, by: 0.01).map { Float($0) }
        let ys = Self.evaluate(VectorMath.exp, xs)
        var worst = 0.0
        for (x, y) in zip(xs, ys) { worst = max(worst, abs(Double(y) - Foundation.exp(Double(x))) / Foundation.exp(Double(x))) }
        #expect(worst < 2e-7)
        #expect(Self.evaluate(VectorMath.exp, [-1000, 1000]).allSatisfy { $0.isFinite })
    }

    @Test func erfIsWithinItsBound() {
        let ys = Self.evaluate(VectorMath.erf, Self.grid)
        var worst = 0.0
        for (x, y) in zip(Self.grid, ys) { worst = max(worst, abs(Double(y) - Foundation.erf(Double(x)))) }
        #expect(worst < 5e-7)
    }

    @Test func tanhIsWithinItsBound() {
        let ys = Self.evaluate(VectorMath.tanh, Self.grid + [-100, 100])
        var worst = 0.0
        for (x, y) in zip(Self.grid + [-100, 100], ys) { worst = max(worst, abs(Double(y) - Foundation.tanh(Double(x)))) }
        #expect(worst < 3e-7)
    }
}
