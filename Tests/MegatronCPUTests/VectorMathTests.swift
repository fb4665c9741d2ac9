import Foundation
import Testing
@testable import MegatronCPU

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

    @Test func softmaxMasksKeysAndHandlesAFullyMaskedRow() {
        var row: [Float] = [1, 2, 3, 100, 0.5, -1, 2.5, 1, 4, 0]  // 10 wide: a SIMD8 block and a tail
        let keep: [Float] = [1, 1, 1, 0, 1, 1, 1, 1, 1, 0]
        var inverse: [Float] = [0]
        row.withUnsafeMutableBufferPointer {
            Kernels.softmaxNumerators($0.baseAddress!, rows: 1, width: 10, keep: keep, inverseSums: &inverse)
        }
        let values: [Double] = [1, 2, 3, 100, 0.5, -1, 2.5, 1, 4, 0]
        let e = zip(values, keep).map { $1 == 0 ? 0 : Foundation.exp($0 - 4) }
        let total = e.reduce(0, +)
        for j in 0..<10 { #expect(abs(Double(row[j] * inverse[0]) - e[j] / total) < 1e-6, "\(j)") }
        #expect(row[3] == 0 && row[9] == 0)
        var masked: [Float] = [5, 6]
        masked.withUnsafeMutableBufferPointer {
            Kernels.softmaxNumerators($0.baseAddress!, rows: 1, width: 2, keep: [0, 0], inverseSums: &inverse)
        }
        #expect(masked == [1, 1] && inverse == [0.5])
    }
}
