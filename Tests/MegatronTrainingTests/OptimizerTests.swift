import CTrainingKernels
import Foundation
import Testing
import MegatronCPU
import MegatronModel
import TensorFiles
@testable import MegatronTraining

/// 20 AdamW steps as the HF Trainer takes them — its groups (no decay on biases and LayerNorm weights), weight decay
/// 0.01, linear warmup over 4 steps and decay, clipping at 1.0, gradient accumulation 2 — from the same weights and
/// batches as PyTorch in float32 (scripts/make_training_fixtures.py), for a Megatron-BERT classifier (`steps`) and a
/// BERT masked LM whose decoder is the word embeddings (`steps-mlm`: one parameter with both gradients, clipped and
/// stepped once): every micro-batch's loss, every step's gradient norm and learning rate within 1e-5, every final
/// weight within 1e-5.
@Suite struct OptimizerTests {
    struct Steps: Decodable {
        struct Batch: Decodable {
            var input_ids: [[Int]]
            var attention_mask: [[Int]]
            var token_type_ids: [[Int]]
            /// A label per sequence (`steps`), or per token with -100 where nothing is predicted (`steps-mlm`).
            var labels: [Int]

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                (input_ids, attention_mask, token_type_ids) = (try container.decode([[Int]].self, forKey: .input_ids),
                    try container.decode([[Int]].self, forKey: .attention_mask), try container.decode([[Int]].self, forKey: .token_type_ids))
                if let perSequence = try? container.decode([Int].self, forKey: .labels) {
                    labels = perSequence
                } else {
                    labels = try container.decode([[Int]].self, forKey: .labels).flatMap { $0 }
                }
            }
            enum CodingKeys: String, CodingKey { case input_ids, attention_mask, token_type_ids, labels }
        }
        var steps: Int
        var accumulation: Int
        var learning_rate: Double
        var weight_decay: Double
        var warmup_steps: Int
        var max_norm: Double
        var betas: [Double]
        var epsilon: Double
        var batches: [Batch]
        var model: String
    }

    @Test(arguments: ["steps", "steps-mlm"]) func twentyStepsMatchPyTorch(fixture: String) throws {
        let fixtures = GradientTests.fixtures
        let plan = try JSONDecoder().decode(Steps.self, from: Data(contentsOf: URL(fileURLWithPath: fixtures + "/\(fixture).json")))
        let source = try ModelSource.open(fixtures + "/" + plan.model)
        let masked = fixture == "steps-mlm"
        let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(),
                                       head: masked ? .maskedLM : .sequenceClassification, dropout: DropoutRates.none)
        var optimizer = AdamW(beta1: plan.betas[0], beta2: plan.betas[1], epsilon: plan.epsilon, weightDecay: plan.weight_decay)
        let schedule = Schedule(.linear, peak: plan.learning_rate, warmupSteps: plan.warmup_steps, totalSteps: plan.steps)
        let expected = try SafeTensorsFile(path: fixtures + "/\(fixture).expected.safetensors").tensors
        let losses = try #require(expected["losses"]).toDoubles(), norms = try #require(expected["norms"]).toDoubles()
        let rates = try #require(expected["rates"]).toDoubles()
        var random = SeededRandom(seed: 1)
        var ours: [Double] = []
        for step in 0..<plan.steps {
            #expect(abs(schedule.rate(at: step) - rates[step]) <= 1e-12, "rate at step \(step)")
            for micro in 0..<plan.accumulation {
                let batch = plan.batches[(step * plan.accumulation + micro) % plan.batches.count]
                // The masked LM's logits are the labelled tokens' rows only (B·S positions), in order.
                let positions = masked ? batch.labels.indices.filter { batch.labels[$0] != -100 } : nil
                let targets = (masked ? positions!.map { batch.labels[$0] } : batch.labels).map(Double.init)
                let (loss, _) = try model.step(ids: batch.input_ids, types: batch.token_type_ids, mask: batch.attention_mask,
                                               positions: positions, lossScale: 1 / Double(plan.accumulation), random: &random) {
                    try Loss.crossEntropy.evaluate($0, targets: targets)
                }
                ours.append(loss)
            }
            let norm = optimizer.clippedStep(model.parameterList, learningRate: schedule.rate(at: step), maxNorm: plan.max_norm)
            #expect(abs(norm - norms[step]) <= 1e-5 * max(1, norms[step]), "gradient norm at step \(step): \(norm) vs \(norms[step])")
            #expect(model.parameterList.allSatisfy { $0.gradient.toArray().allSatisfy { $0 == 0 } }, "the step zeroes the gradients")
        }
        let worstLoss = zip(ours, losses).map { abs($0 - $1) }.max() ?? 0
        #expect(worstLoss <= 1e-5, "loss sequence: worst |Δ| \(worstLoss)")
        var worst = 0.0, worstName = ""
        for parameter in model.parameterList {
            let reference = try #require(expected["weight." + parameter.name]).toDoubles()
            let difference = zip(parameter.value.toArray(), reference).map { abs(Double($0) - $1) }.max() ?? 0
            if parameter.name.hasSuffix("attention.self.key.bias") {
                // Its gradient is zero in exact arithmetic: Adam normalises the round-off of each side (different
                // noise in PyTorch and here) into steps of up to the learning rate. It moves no further than that.
                let start = try #require(source.tensors[parameter.name]).toDoubles()
                let moved = zip(parameter.value.toArray(), start).map { abs(Double($0) - $1) }.max() ?? 0
                #expect(moved <= plan.learning_rate * Double(plan.steps), "\(parameter.name) moved \(moved)")
                continue
            }
            if difference > worst { (worst, worstName) = (difference, parameter.name) }
            #expect(difference <= 1e-5, "\(parameter.name): max |Δ| \(difference) after \(plan.steps) steps")
        }
        print("\(fixture): 20 AdamW steps: losses \(ours.first ?? 0) → \(ours.last ?? 0) (PyTorch \(losses.first ?? 0) → \(losses.last ?? 0)); worst loss |Δ| \(worstLoss); worst weight |Δ| \(worst) at \(worstName)")
    }

    /// The schedules as transformers computes them, at the points that matter.
    @Test func schedulesMatchTransformers() {
        let linear = Schedule(.linear, peak: 1e-3, warmupSteps: 4, totalSteps: 20)
        #expect(linear.rate(at: 0) == 0 && linear.rate(at: 2) == 5e-4 && linear.rate(at: 4) == 1e-3 && linear.rate(at: 20) == 0)
        #expect(abs(linear.rate(at: 12) - 5e-4) < 1e-15)
        let cosine = Schedule(.cosine, peak: 1e-3, warmupSteps: 0, totalSteps: 10)
        #expect(cosine.rate(at: 0) == 1e-3 && abs(cosine.rate(at: 5) - 5e-4) < 1e-15 && cosine.rate(at: 10) < 1e-18)
        let constant = Schedule(.constant, peak: 1e-3, warmupSteps: 2, totalSteps: 10)
        #expect(constant.rate(at: 1) == 5e-4 && constant.rate(at: 9) == 1e-3)
    }

    /// The update kernel (AVX-512, AVX2 or plain C, whichever this CPU runs) gives the bits of the scalar formula, lane by
    /// lane, at lengths that leave every kind of tail, with and without clipping's scale, zeroing and decay.
    @Test func updateKernelMatchesTheScalarFormula() {
        var random = SeededRandom(seed: 11)
        func values(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in Float(random.normal()) * scale } }
        for (count, scale, zeroing, decay) in [(1, Float(1), true, Float(1)), (7, 0.25, false, 0.999), (16, 1, true, 0.99),
                                               (37, 0.5, true, 1), (1000, 1, false, 0.9995)] {
            let (b1, b2, stepSize, correction2, eps): (Float, Float, Float, Float, Float) = (0.9, 0.999, 3e-4, 0.0447, 1e-8)
            var p = values(count, 1), g = values(count, 1e-2), m = values(count, 1e-3), v = values(count, 1e-5).map { $0 * $0 }
            var expected = (p: p, g: g, m: m, v: v)
            for i in 0..<count {  // torch's order, one multiply or add at a time (no fused multiply-adds)
                var gradient = g[i]
                if scale < 1 { gradient *= scale }
                if zeroing { expected.g[i] = 0 }
                let parameter = p[i] * decay
                let m1 = b1 * m[i] + (1 - b1) * gradient, v1 = b2 * v[i] + (1 - b2) * gradient * gradient
                expected.m[i] = m1
                expected.v[i] = v1
                expected.p[i] = parameter - stepSize * m1 / (v1.squareRoot() / correction2 + eps)
            }
            mb_adamw_update(&p, &g, &m, &v, count, scale, zeroing ? 1 : 0, decay, b1, b2, stepSize, correction2, eps)
            #expect(p.map(\.bitPattern) == expected.p.map(\.bitPattern), "parameters, \(count) values")
            #expect(g.map(\.bitPattern) == expected.g.map(\.bitPattern) && m.map(\.bitPattern) == expected.m.map(\.bitPattern)
                    && v.map(\.bitPattern) == expected.v.map(\.bitPattern), "gradients and moments, \(count) values")
        }
    }
}
