import Foundation
import Testing
import MegatronBackend
@testable import MegatronCPU

/// Training's FP32 products against a float64 sum, every transpose and β, on shapes split by rows, by columns (bᵀ
/// with more columns than rows), and not split at all (small): within 1e-5 of the terms' magnitude.
@Suite struct CPUMatrixProductsTests {
    @Test(arguments: [(67, 130, 384), (300, 40, 256), (9, 7, 5)], [(false, false), (false, true), (true, false), (true, true)])
    func productsMatchAFloat64Sum(shape: (Int, Int, Int), transposes: (Bool, Bool)) {
        let (m, n, k) = shape, (transposeA, transposeB) = transposes
        var random = SeededRandom(seed: 9)
        let a = (0..<(m * k)).map { _ in Float(random.uniform() * 2 - 1) }, b = (0..<(k * n)).map { _ in Float(random.uniform() * 2 - 1) }
        let start = (0..<(m * n)).map { _ in Float(random.uniform()) }
        for (alpha, beta): (Float, Float) in [(1, 0), (0.5, 1)] {
            var c = start
            CPUMatrixProducts().multiply(m: m, n: n, k: k, a, transposeA: transposeA, b, transposeB: transposeB, into: &c,
                                         alpha: alpha, beta: beta)
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, magnitude = 1.0
                    for p in 0..<k {
                        let term = Double(transposeA ? a[p * m + i] : a[i * k + p]) * Double(transposeB ? b[j * k + p] : b[p * n + j])
                        sum += term
                        magnitude += abs(term)
                    }
                    let expected = Double(alpha) * sum + Double(beta) * Double(start[i * n + j])
                    worst = max(worst, abs(Double(c[i * n + j]) - expected) / magnitude)
                }
            }
            #expect(worst < 1e-5, "\(shape) transposes \(transposes) α \(alpha) β \(beta): worst \(worst)")
        }
    }
}
