import CTrainingKernels
import Foundation
import MegatronBackend
import Testing
@testable import MegatronTraining

/// Training's C kernels run at the CPU's vector width and give the Swift formulas' bits (the AdamW update's test is
/// OptimizerTests'): on every value, at lengths that leave every kind of tail.
@Suite struct TrainingKernelsTests {
    /// The FFN's GELU with its derivative (`mb_gelu_with_derivative`) against `Activations.both` (the inference
    /// kernels' erf and exp).
    @Test func geluKernelMatchesTheSwiftFormula() {
        var random = SeededRandom(seed: 3)
        // Normal values at three scales, the clamps of exp (|x| large), zeros of both signs, infinities.
        var values = (0..<4000).map { i in Float(random.normal()) * [0.5, 3, 12][i % 3] }
        values += [0, -0, 1e-30, -1e-30, 40, -40, 200, -200, .infinity, -.infinity]
        for count in [values.count, 1, 15, 17, 33] {
            let x = Tensor(shape: [count], values: Array(values.prefix(count)))
            let (y, derivative) = Activations.forwardWithDerivative(x, .gelu)
            var same = true
            for start in stride(from: 0, to: count, by: 8) {
                var lanes = VectorMath.V()
                for j in 0..<min(8, count - start) { lanes[j] = x[start + j] }
                let (value, slope) = Activations.both(lanes, .gelu)
                for j in 0..<min(8, count - start) {
                    same = same && y[start + j].bitPattern == value[j].bitPattern && derivative[start + j].bitPattern == slope[j].bitPattern
                }
            }
            #expect(same, "\(count) values")
        }
    }

    /// The softmax's e^x (`mb_exp_in_place`) against `VectorMath.exp`, across and beyond its clamps.
    @Test func expKernelMatchesVectorMath() {
        var random = SeededRandom(seed: 4)
        var values = (0..<3000).map { i in Float(random.normal()) * [1, 10, 60][i % 3] }
        values += [0, -0, -87.3, -87.4, 88.3, 88.4, -1000, 1000, -.infinity, .infinity]
        for count in [values.count, 1, 9, 31] {
            var x = Array(values.prefix(count))
            mb_exp_in_place(&x, count)
            var same = true
            for start in stride(from: 0, to: count, by: 8) {
                var lanes = VectorMath.V()
                for j in 0..<min(8, count - start) { lanes[j] = values[start + j] }
                let expected = VectorMath.exp(lanes)
                for j in 0..<min(8, count - start) { same = same && x[start + j].bitPattern == expected[j].bitPattern }
            }
            #expect(same, "\(count) values")
        }
    }

    /// Dropout's mask (`mb_dropout_mask`) holds `SeededRandom.next()`'s draws one after another, compared as `Dropout`
    /// compares them; `mb_dropout_apply` multiplies by 0 or the scale as the factors as floats did.
    @Test func dropoutMaskFollowsTheGenerator() {
        for (count, seed, keep) in [(1, UInt64(1), 0.9), (7, 2, 0.5), (1000, 3, 0.9), (1003, .max, 0.1)] {
            let threshold = UInt64((keep * 0x1p53).rounded(.up)), scale = Float(1 / keep)
            var kept = [UInt8](repeating: 7, count: count)
            mb_dropout_mask(&kept, count, seed, threshold)
            var random = SeededRandom(seed: seed)
            let expected = (0..<count).map { _ in random.next() >> 11 < threshold ? scale : 0 }
            #expect(kept.map { $0 == 0 ? 0 : scale } == expected && kept.allSatisfy { $0 <= 1 }, "\(count) draws from seed \(seed)")
            var x = (0..<count).map { Float($0) - 500.5 }
            mb_dropout_apply(&x, kept, count, scale)
            #expect(x == (0..<count).map { (Float($0) - 500.5) * expected[$0] })
        }
    }
}
