import Foundation
import Testing
import MegatronCPU
import MegatronModel
@testable import MegatronTraining

/// Multiple choice: a run learns (accuracy on held-out examples), stops and resumes to the same bits (each example's
/// choices kept together through the shuffle), and the reader takes indices and letters.
@Suite struct MultipleChoiceTrainingTests {
    /// "Which is the animal?": three endings of two words, one with an animal in it.
    static func examples(_ count: Int, seed: UInt64) -> [ChoiceExample] {
        var random = SeededRandom(seed: seed)
        let others = ClassificationTrainerTests.words.filter { !["cat", "dog", "bird"].contains($0) }
        func word() -> String { others[Int(random.next() % UInt64(others.count))] }
        return (0..<count).map { i in
            var choices = (0..<2).map { _ in word() + " " + word() }
            let label = Int(random.next() % 3)
            choices.insert(word() + " " + ["cat", "dog", "bird"][Int(random.next() % 3)], at: label)
            return ChoiceExample(prompt: "one", choices: choices, label: label, location: "mc:\(i + 1)")
        }
    }

    static func trainer() throws -> ClassificationTrainer {
        let source = try TrainableModelTests.source("megatron-mc")
        let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(), head: .multipleChoice,
                                       dropout: DropoutRates(hidden: 0.1, attention: 0.1, classifier: 0.1), newHead: true, seed: 3)
        var options = TrainingOptions()
        (options.maxSteps, options.batchSize, options.evalEvery, options.metric) = (150, 4, 50, "accuracy")
        (options.learningRate, options.warmupRatio, options.seed, options.gradientAccumulation) = (5e-3, 0.1, 5, 2)
        return try ClassificationTrainer(model: model, tokenizer: try ClassificationTrainerTests.tokenizer(), labels: .choices, options: options)
    }

    @Test func learnsAndResumes() throws {
        let train = Self.examples(80, seed: 1), dev = Self.examples(30, seed: 2)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("mc-run-\(UUID().uuidString)").path
        let whole = base + "-whole", parts = base + "-parts"
        defer { for path in [whole, parts] { try? FileManager.default.removeItem(atPath: path) } }
        let summary = try Self.trainer().run(choices: train, eval: dev, output: whole, tokenizerDirectory: nil)
        let best = try #require(summary.best)
        #expect(Set(best.keys) == ["accuracy", "loss"] && best["accuracy"] ?? 0 >= 0.9, "\(best)")
        let first = try Self.trainer()
        var steps = 0
        first.progress = { if $0.evaluation == nil { steps = $0.step } }
        first.shouldStop = { steps >= 37 }
        _ = try first.run(choices: train, eval: dev, output: parts, tokenizerDirectory: nil)
        _ = try Self.trainer().run(choices: train, eval: dev, output: parts, tokenizerDirectory: nil, resume: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: parts + "/model.safetensors")) == Data(contentsOf: URL(fileURLWithPath: whole + "/model.safetensors")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: parts + "/metrics.jsonl")) == Data(contentsOf: URL(fileURLWithPath: whole + "/metrics.jsonl")))
    }

    @Test func readsIndicesAndLetters() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mc-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("""
        {"article": "A text. Which?", "options": ["x", "y", "z"], "answer": "C"}
        {"article": "Another.", "options": ["x", "y", "z"], "answer": 0}
        """.utf8).write(to: URL(fileURLWithPath: path))
        let examples = try ChoiceExamples.read(path, columns: .init(prompt: "article", choices: "options", label: "answer"))
        #expect(examples.map(\.label) == [2, 0] && examples[0].prompt == "A text. Which?" && examples[1].location == path + ":2")
        #expect(throws: TrainingError.self) { try ChoiceExamples.read(path, columns: .init(prompt: "article", choices: "options", label: "answer"), choices: 4) }
    }
}
