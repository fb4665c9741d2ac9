import Foundation
import Testing
import MegatronBackend
@testable import MegatronCPU

/// Training's BF16 products: where the CPU has BF16 dot products, every transpose and β against a float64 sum of the
/// BF16-rounded operands (the only rounding left is FP32 summation: within 1e-5 of the terms' magnitude), and small
/// products the FP32 ones' bits; elsewhere a clear refusal.
@Suite struct BF16MatrixProductsTests {
    static func bf16(_ x: Float) -> Double {
        var value: UInt16 = 0
        withUnsafePointer(to: x) { OneDNN.roundToBFloat16($0, into: &value, count: 1, parallel: false) }
        return Double(Float(bitPattern: UInt32(value) << 16))
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func productsSumTheRoundedOperands(transposeA: Bool, transposeB: Bool) throws {
        guard let products = try? BF16MatrixProducts() else {
            #expect(throws: BackendError.self) { try BF16MatrixProducts() }
            do { _ = try BF16MatrixProducts() } catch { #expect("\(error)".contains("AVX512_BF16 or AMX")) }
            return
        }
        #expect(products.precision == "bf16")
        let (m, n, k) = (67, 130, 384)  // 3.3M multiply-adds: BF16; n not a multiple of the column blocks
        var random = SeededRandom(seed: 5)
        let a = (0..<(m * k)).map { _ in Float(random.uniform() * 2 - 1) }, b = (0..<(k * n)).map { _ in Float(random.uniform() * 2 - 1) }
        let start = (0..<(m * n)).map { _ in Float(random.uniform()) }
        for beta: Float in [0, 1] {
            var c = start
            products.multiply(m: m, n: n, k: k, a, transposeA: transposeA, b, transposeB: transposeB, into: &c, alpha: 1, beta: beta)
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, magnitude = 0.0
                    for p in 0..<k {
                        let x = Self.bf16(transposeA ? a[p * m + i] : a[i * k + p]), y = Self.bf16(transposeB ? b[j * k + p] : b[p * n + j])
                        sum += x * y
                        magnitude += abs(x * y)
                    }
                    let expected = sum + Double(beta) * Double(start[i * n + j])
                    worst = max(worst, abs(Double(c[i * n + j]) - expected) / magnitude)
                }
            }
            #expect(worst < 1e-5, "transposeA \(transposeA), transposeB \(transposeB), β \(beta): worst \(worst)")
        }
        // A small product (attention's per head) is the FP32 one, bit for bit.
        var small = [Float](repeating: 0, count: 16 * 16), reference = small
        products.multiply(m: 16, n: 16, k: 16, a, transposeA: transposeA, b, transposeB: transposeB, into: &small, alpha: 0.5, beta: 0)
        CPUMatrixProducts().multiply(m: 16, n: 16, k: 16, a, transposeA: transposeA, b, transposeB: transposeB, into: &reference, alpha: 0.5, beta: 0)
        #expect(small == reference)
    }
}
