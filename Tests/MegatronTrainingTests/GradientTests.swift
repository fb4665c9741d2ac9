import Foundation
import Testing
import MegatronCPU
import MegatronModel
import TensorFiles
@testable import MegatronTraining

/// Every parameter's gradient against transformers' `loss.backward()` in float64 on the same weights and batch
/// (scripts/make_training_fixtures.py; dropout off), both architectures, every `problem_type` of sequence
/// classification, token classification (labels per token, -100 ignored) and question answering (start and end
/// positions, those past the sequence ignored), multiple choice (2 examples of 3 choices), masked LM (the decoder tied to
/// the word embeddings) and pre-training (masked LM + next sentence): max |Δ| within
/// 1e-4 of the gradient's largest magnitude (the bound), the loss and logits within 1e-5.
@Suite struct GradientTests {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path

    struct Batch: Decodable {
        var input_ids: [[Int]]
        var attention_mask: [[Int]]
        var token_type_ids: [[Int]]
        var labels: [String: [JSONNumberList]]
    }

    /// A label: one number (a class) or a list (regression values, multi-label targets).
    enum JSONNumberList: Decodable {
        case one(Double), many([Double])
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Double.self) { self = .one(value) } else { self = .many(try container.decode([Double].self)) }
        }
        var values: [Double] {
            switch self {
            case .one(let value): [value]
            case .many(let values): values
            }
        }
    }

    @Test(arguments: ["megatron-single", "bert-single", "megatron-regression", "bert-multilabel", "megatron-token", "bert-token",
                      "megatron-qa", "bert-qa", "megatron-mc", "bert-mc", "megatron-mlm", "bert-mlm", "megatron-pretraining"])
    func everyGradientMatchesPyTorch(name: String) throws {
        let batch = try JSONDecoder().decode(Batch.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/batch.json")))
        let source = try ModelSource.open(Self.fixtures + "/" + name)
        let head = try #require(ModelHead.allCases.first { source.config.architectures.first?.hasSuffix($0.rawValue) == true })
        let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(), head: head)
        var random = SeededRandom(seed: 1)
        model.zeroGradients()
        let value: Double, logits: Tensor
        let expected = try SafeTensorsFile(path: Self.fixtures + "/\(name).expected.safetensors").tensors
        var expectedLogits = try #require(expected["logits"]).toDoubles()
        if head == .maskedLM || head == .preTraining {
            // Only the labelled tokens' rows are computed: the reference's logits at those rows.
            let labels = try #require(batch.labels["masked_lm"]).flatMap(\.values), v = source.config.vocabSize
            let positions = labels.indices.filter { labels[$0] != -100 }, targets = positions.map { labels[$0] }
            let nextSentence = try #require(batch.labels["next_sentence"]).flatMap(\.values)
            expectedLogits = positions.flatMap { expectedLogits[($0 * v)..<($0 * v + v)] }
            var nextSentenceLogits: Tensor?
            (value, logits) = try model.step(ids: batch.input_ids, types: batch.token_type_ids, mask: batch.attention_mask, positions: positions,
                                             random: &random) { logits, nextSentenceOutput in
                let (masked, dMasked) = try Loss.crossEntropy.evaluate(logits, targets: targets)
                guard let nextSentenceOutput else { return (masked, dMasked, nil) }
                nextSentenceLogits = nextSentenceOutput
                let (next, dNext) = try Loss.crossEntropy.evaluate(nextSentenceOutput, targets: nextSentence)
                return (masked + next, dMasked, dNext)
            }
            if head == .preTraining {
                let reference = try #require(expected["next_sentence_logits"]).toDoubles(), ours = try #require(nextSentenceLogits).toArray()
                #expect(zip(ours, reference).allSatisfy { abs(Double($0) - $1) <= 1e-5 }, "next-sentence logits")
            }
        } else if head == .multipleChoice {  // the batch's rows as 2 examples of 3 choices, as the generator takes them
            let rows = [0, 1, 2, 2, 0, 1], labels = try #require(batch.labels["multiple_choice"]).flatMap(\.values)
            (value, logits) = try model.step(ids: rows.map { batch.input_ids[$0] }, types: rows.map { batch.token_type_ids[$0] },
                                             mask: rows.map { batch.attention_mask[$0] }, random: &random) {
                try Loss.choices($0, labels: labels)
            }
        } else if head == .questionAnswering {
            let starts = try #require(batch.labels["start_positions"]).flatMap(\.values).map { Int($0) }
            let ends = try #require(batch.labels["end_positions"]).flatMap(\.values).map { Int($0) }
            (value, logits) = try model.step(ids: batch.input_ids, types: batch.token_type_ids, mask: batch.attention_mask, random: &random) {
                try SpanLoss.evaluate($0, starts: starts, ends: ends)
            }
        } else {
            let tokens = head == .tokenClassification
            let problem = tokens ? "token_classification" : try #require(source.config.problemType)
            let loss = tokens ? .crossEntropy : try #require(Loss(rawValue: problem))
            let targets = try #require(batch.labels[problem]).flatMap(\.values)
            (value, logits) = try model.step(ids: batch.input_ids, types: batch.token_type_ids, mask: batch.attention_mask,
                                             targets: targets, loss: loss, random: &random)
        }
        let expectedLoss = try #require(expected["loss"]).toDoubles()[0]
        #expect(abs(value - expectedLoss) <= 1e-5 * max(1, abs(expectedLoss)), "loss \(value) vs \(expectedLoss)")
        #expect(logits.count == expectedLogits.count && zip(logits.toArray(), expectedLogits).allSatisfy { abs(Double($0) - $1) <= 1e-5 }, "logits")
        let gradientNames = Set(expected.keys.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) })
        #expect(gradientNames == Set(model.parameters.keys), "parameters: ours \(model.parameters.count), PyTorch's \(gradientNames.count)")
        // Some gradients are zero in exact arithmetic — the key biases' (softmax ignores a constant added to a row of
        // scores: q·b_k is one), and for question answering qa_outputs' bias and the last LayerNorm's bias (a constant
        // added to every start or end logit of a sequence) —; PyTorch's float64 leaves ~1e-17, our FP32 ~1e-8. Those
        // (references under 1e-12 of the model's largest gradient) are held to 1e-6 of the largest instead of their own
        // (zero) magnitude.
        var references: [String: [Double]] = [:]
        for parameterName in model.parameters.keys {
            references[parameterName] = try #require(expected["grad." + parameterName]).toDoubles()
        }
        let largest = references.values.flatMap { $0 }.map(abs).max() ?? 0
        var worstRatio = 0.0, worstName = ""
        for (parameterName, parameter) in model.parameters {
            let reference = references[parameterName] ?? []
            let ours = parameter.gradient.toArray()
            #expect(ours.count == reference.count, "\(parameterName)")
            let difference = zip(ours, reference).map { abs(Double($0) - $1) }.max() ?? 0
            let scale = reference.map(abs).max() ?? 0
            if scale <= 1e-12 * largest {
                #expect(difference <= 1e-6 * largest, "\(name) \(parameterName): max |Δ| \(difference), model's largest gradient \(largest)")
                continue
            }
            let ratio = difference / max(scale, 1e-30)
            if ratio > worstRatio { (worstRatio, worstName) = (ratio, parameterName) }
            #expect(difference <= 1e-4 * scale, "\(name) \(parameterName): max |Δ| \(difference), largest gradient \(scale)")
        }
        print("\(name): loss \(value) (PyTorch \(expectedLoss)); worst gradient error / largest: \(worstRatio) at \(worstName)")
    }

    /// The losses' own gradients against central differences in Double (a check that could fail on its own).
    @Test(arguments: Loss.allCases)
    func lossGradientsMatchFiniteDifferences(loss: Loss) throws {
        let logits: [Float] = [0.3, -1.2, 2.0, 0.5, 0.0, -0.7]
        let targets: [Double] = loss == .crossEntropy ? [2, -100] : [0.5, 1, 0, 1, 0, 0]
        let (_, gradient) = try loss.evaluate(Tensor(shape: [2, 3], values: logits), targets: targets)
        for i in logits.indices {
            var up = logits, down = logits
            up[i] += 1e-3
            down[i] -= 1e-3
            let numeric = (try loss.evaluate(Tensor(shape: [2, 3], values: up), targets: targets).loss
                           - loss.evaluate(Tensor(shape: [2, 3], values: down), targets: targets).loss) / 2e-3
            #expect(abs(numeric - Double(gradient[i])) < 1e-4, "\(loss) logit \(i): \(numeric) vs \(gradient[i])")
        }
        #expect(throws: TrainingError.self) { try Loss.crossEntropy.evaluate(Tensor(shape: [1, 3]), targets: [-100]) }
        #expect(throws: TrainingError.self) { try Loss.crossEntropy.evaluate(Tensor(shape: [1, 3]), targets: [3]) }
    }
}
