import Foundation
import Testing
import MegatronCPU
import MegatronModel
import TensorFiles
@testable import MegatronTraining

@Suite struct TrainableModelTests {
    static func source(_ name: String) throws -> ModelSource { try ModelSource.open(GradientTests.fixtures + "/" + name) }

    /// The head a fixture was made with (config.json's `architectures`).
    static func head(_ source: ModelSource) -> ModelHead {
        source.config.architectures.first.flatMap(ModelHead.init(architectureName:)) ?? .sequenceClassification
    }

    /// Targets for the fixture batch: a class per sequence, or per token (-100 where run_ner ignores).
    static func targets(_ head: ModelHead, _ batch: GradientTests.Batch) -> [Double] {
        head == .tokenClassification ? (batch.labels["token_classification"] ?? []).flatMap(\.values) : [0, 1, 2]
    }

    static func batch() throws -> GradientTests.Batch {
        try JSONDecoder().decode(GradientTests.Batch.self, from: Data(contentsOf: URL(fileURLWithPath: GradientTests.fixtures + "/batch.json")))
    }

    /// The written directory is what inference loads: our `MegatronBERTModel` gives the trained model's logits
    /// (≤ 1e-4), and config.json names the head, the labels and the problem type; for tokens, every position's.
    @Test(arguments: ["megatron-single", "bert-single", "megatron-token", "bert-token"])
    func theWrittenDirectoryRunsInInference(name: String) throws {
        let source = try Self.source(name), batch = try Self.batch(), head = Self.head(source)
        let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(), head: head,
                                       dropout: DropoutRates.none)
        var random = SeededRandom(seed: 1)
        let (_, logits) = try model.step(ids: batch.input_ids, types: batch.token_type_ids, mask: batch.attention_mask,
                                         targets: Self.targets(head, batch), loss: .crossEntropy, random: &random)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("trained-\(name)-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let labels = head == .tokenClassification ? ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"] : ["negative", "neutral", "positive"]
        try model.write(to: directory, labels: labels, problemType: .crossEntropy, tokenizerDirectory: nil)
        let loaded = try MegatronBERTModel(path: directory, backend: CPUBackend())
        #expect(loaded.head == head)
        #expect(loaded.config.id2label == Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($0.offset, $0.element) }))
        #expect(loaded.config.problemType == "single_label_classification")
        let outputs = try loaded.forward(Batch(inputIDs: batch.input_ids, attentionMask: batch.attention_mask, tokenTypeIDs: batch.token_type_ids))
        let inference = try #require(outputs.all.first { $0.name == "logits" }?.tensor)
        let worst = zip(inference.toArray(), logits.toArray()).map { abs($0 - $1) }.max() ?? 1
        #expect(worst <= 1e-4, "inference vs training logits: max |Δ| \(worst)")
        // A directory holding other files is not replaced.
        FileManager.default.createFile(atPath: directory + "/notes.txt", contents: Data("mine".utf8))
        #expect(throws: ModelError.self) {
            try model.write(to: directory, labels: ["a", "b", "c"], problemType: .crossEntropy, tokenizerDirectory: nil)
        }
    }

    /// Sequences of one token (the [CLS] row is all there is, so the last layer's query rows and its keys are the same
    /// rows): the logits are inference's, and the gradients central differences'.
    @Test func oneTokenSequences() throws {
        let source = try Self.source("megatron-single")
        let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(), dropout: DropoutRates.none)
        var random = SeededRandom(seed: 1)
        func loss() throws -> Double {
            model.zeroGradients()
            return try model.step(ids: [[2], [7]], types: [[0], [1]], mask: [[1], [1]], targets: [0, 2], loss: .crossEntropy,
                                  random: &random).loss
        }
        try Self.expectFiniteDifferences(model, [("bert.encoder.layer.1.attention.self.key.weight", 40),
                                                 ("bert.encoder.layer.1.attention.self.value.weight", 41),
                                                 ("bert.encoder.layer.1.attention.self.query.weight", 42),
                                                 ("bert.encoder.layer.0.attention.self.value.weight", 43),
                                                 ("bert.embeddings.word_embeddings.weight", 7 * 18 + 5)], loss)
        let logits = try model.logits(ids: [[2], [7]], types: [[0], [1]], mask: [[1], [1]], random: &random)
        let loaded = try MegatronBERTModel(path: GradientTests.fixtures + "/megatron-single", backend: CPUBackend())
        let outputs = try loaded.forward(Batch(inputIDs: [[2], [7]], attentionMask: [[1], [1]], tokenTypeIDs: [[0], [1]]))
        let inference = try #require(outputs.all.first { $0.name == "logits" }?.tensor)
        #expect(zip(inference.toArray(), logits.toArray()).allSatisfy { abs($0 - $1) <= 1e-4 })
    }

    /// A new head on an encoder saved alone (no `bert.` prefix, no classifier): drawn as transformers initialises one;
    /// without --new-head, or with a classifier of another label count, a clear error.
    @Test func aNewHeadOnABareEncoder() throws {
        let source = try Self.source("megatron-single")
        var bare: [String: StoredTensor] = [:]
        for (name, tensor) in source.tensors where !name.hasPrefix("classifier.") { bare[String(name.dropFirst(5))] = tensor }
        var config = source.config
        config.numLabels = 2
        let model = try TrainableModel(config: config, tensors: bare, products: CPUMatrixProducts(), newHead: true, seed: 7)
        let weight = try #require(model.parameters["classifier.weight"]), bias = try #require(model.parameters["classifier.bias"])
        #expect(weight.shape == [2, config.hiddenSize] && bias.toArrayIsZero)
        let values = weight.value.toArray().map(Double.init)
        let deviation = (values.map { $0 * $0 }.reduce(0, +) / Double(values.count)).squareRoot()
        #expect(deviation > 0.01 && deviation < 0.04, "drawn with standard deviation 0.02: \(deviation)")
        #expect(try #require(model.parameters["bert.encoder.layer.0.attention.self.query.weight"]).value.toArray()
                == (try #require(source.tensors["bert.encoder.layer.0.attention.self.query.weight"]).toFloats()))
        #expect(throws: TrainingError.self) { try TrainableModel(config: config, tensors: bare, products: CPUMatrixProducts()) }
        // Heads without a backward pass yet are refused by name.
        #expect(throws: TrainingError.self) {
            try TrainableModel(config: config, tensors: bare, products: CPUMatrixProducts(), head: .nextSentencePrediction, newHead: true)
        }
        do {
            _ = try TrainableModel(config: config, tensors: source.tensors, products: CPUMatrixProducts())
            Issue.record("a 3-label classifier taken for 2 labels")
        } catch let error as TrainingError {
            #expect(error.description.contains("--new-head"), "\(error)")
        }
    }

    /// The backward pass's gradients of `checked` parameter elements (after one call of `loss`, which steps the model)
    /// against central differences of `loss` (step 1e-2; within 2e-3 + 2% of the gradient).
    static func expectFiniteDifferences(_ model: TrainableModel, _ checked: [(String, Int)], _ loss: () throws -> Double,
                                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        _ = try loss()
        var analytic: [Double] = []
        for (name, index) in checked { analytic.append(Double(try #require(model.parameters[name]).gradient[index])) }
        for ((name, index), expected) in zip(checked, analytic) {
            let parameter = try #require(model.parameters[name])
            let original = parameter.value[index], step: Float = 1e-2
            parameter.value[index] = original + step
            let up = try loss()
            parameter.value[index] = original - step
            let down = try loss()
            parameter.value[index] = original
            let numeric = (up - down) / (2 * Double(step))
            #expect(abs(numeric - expected) <= 2e-3 + 2e-2 * abs(expected), "\(name)[\(index)]: numeric \(numeric), backward \(expected)",
                    sourceLocation: sourceLocation)
        }
    }

    /// With dropout on, the backward pass multiplies by the masks the forward pass drew: the gradient of the loss as a
    /// function of the weights (the same seed, so the same masks, at every evaluation) matches central differences.
    /// And the masks drop about the fraction asked.
    @Test func dropoutGradientsMatchFiniteDifferences() throws {
        let source = try Self.source("megatron-single"), batch = try Self.batch()
        let rates = DropoutRates(hidden: 0.2, attention: 0.2, classifier: 0.2)
        let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(), dropout: rates)
        func loss() throws -> Double {
            var random = SeededRandom(seed: 99)
            model.zeroGradients()
            return try model.step(ids: batch.input_ids, types: batch.token_type_ids, mask: batch.attention_mask,
                                  targets: [2, 0, 1], loss: .crossEntropy, random: &random).loss
        }
        let checked = [("classifier.weight", 4), ("bert.pooler.dense.weight", 30), ("bert.encoder.layer.1.output.dense.weight", 100),
                       ("bert.encoder.layer.0.attention.self.query.weight", 17), ("bert.encoder.layer.0.intermediate.dense.bias", 5),
                       ("bert.embeddings.word_embeddings.weight", 17 * 18 + 3)]
        try Self.expectFiniteDifferences(model, checked, loss)
        var random = SeededRandom(seed: 3)
        let mask = try #require(Dropout(probability: 0.2).mask(count: 100_000, &random)).factors
        let dropped = Double(mask.filter { $0 == 0 }.count) / 100_000
        #expect(abs(dropped - 0.2) < 0.01 && mask.allSatisfy { $0 == 0 || $0 == 1.25 })
        // Drawn in chunks on every core, the mask is the one-after-another definition: element i kept when the i-th
        // uniform draw is under 1 − p; and the generator ends where 100,000 draws leave it.
        var sequential = SeededRandom(seed: 3)
        #expect(mask == (0..<100_000).map { _ in sequential.uniform() < 0.8 ? Float(1.25) : 0 })
        #expect(random == sequential)
    }

    /// Activation recomputation runs each layer's forward pass again in the backward pass with the generator's state
    /// from the first: the same dropout masks, so the same gradients, bit for bit, for both architectures.
    @Test(arguments: ["megatron-single", "bert-single", "megatron-token", "bert-token"])
    func recomputedActivationsGiveTheSameGradients(name: String) throws {
        let source = try Self.source(name), batch = try Self.batch(), head = Self.head(source)
        let rates = DropoutRates(hidden: 0.2, attention: 0.2, classifier: 0.2)
        var gradients: [[String: [Float]]] = []
        for recompute in [false, true] {
            let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(), head: head,
                                           dropout: rates)
            model.recomputeActivations = recompute
            var random = SeededRandom(seed: 11)
            _ = try model.step(ids: batch.input_ids, types: batch.token_type_ids, mask: batch.attention_mask,
                               targets: Self.targets(head, batch), loss: .crossEntropy, random: &random)
            gradients.append(model.parameters.mapValues { $0.gradient.toArray() })
        }
        #expect(gradients[0] == gradients[1])
        #expect(gradients[0]["bert.encoder.layer.0.attention.self.query.weight"]?.contains { $0 != 0 } == true)
    }
}

extension Parameter {
    var toArrayIsZero: Bool { value.toArray().allSatisfy { $0 == 0 } }
}
