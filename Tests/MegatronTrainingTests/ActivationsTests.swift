import CTrainingKernels
import Foundation
import MegatronBackend
import Testing
@testable import MegatronTraining

/// The FFN's GELU with its derivative runs in C at the CPU's vector width (`mb_gelu_with_derivative`): the same bits as
/// the Swift formula (`Activations.both`, the inference kernels' erf and exp) on every value, at lengths that leave
/// every kind of tail.
@Suite struct ActivationsTests {
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
}
