import Foundation
import Testing
import BERTTokenizer
import MegatronCPU
import MegatronModel
import TensorFiles
@testable import MegatronTraining

/// The trainer's run state: a run stopped at any step and resumed from its checkpoint ends with the same bits as one
/// never stopped (dropout on, gradient accumulation, evaluation between checkpoints); checkpoints are pruned to the
/// newest; a resumed run with other options or data is refused; frozen layers stay as they were.
@Suite struct ClassificationTrainerTests {
    static let words = ["red", "green", "blue", "cat", "dog", "bird", "runs", "sleeps", "sings", "big", "small", "old",
                        "new", "the", "a", "and", "on", "in", "tree", "house", "river", "sky", "sun", "moon", "day",
                        "night", "fast", "slow", "very", "not", "is", "was", "one", "two", "three", "four"]

    static func tokenizer() throws -> BERTTokenizer {
        try BERTTokenizer(vocabulary: try Vocabulary(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
    }

    /// `count` texts of 2–6 words; the label is which of "cat", "dog", "bird" comes first (else the last class).
    static func examples(_ count: Int, seed: UInt64) -> [LabeledText] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { i in
            let text = (0..<(2 + Int(random.next() % 5))).map { _ in words[Int(random.next() % UInt64(words.count))] }
            let label = text.first { ["cat", "dog", "bird"].contains($0) } ?? "none"
            return LabeledText(text: text.joined(separator: " "), pair: nil, label: .name(label), location: "data:\(i + 1)")
        }
    }

    static func options() -> TrainingOptions {
        var options = TrainingOptions()
        (options.maxSteps, options.batchSize, options.gradientAccumulation, options.evalEvery) = (14, 4, 2, 3)
        (options.learningRate, options.warmupRatio, options.weightDecay, options.seed) = (3e-3, 0.2, 0.01, 5)
        options.metric = "accuracy"
        return options
    }

    static func trainer(_ options: TrainingOptions = options()) throws -> ClassificationTrainer {
        let source = try TrainableModelTests.source("megatron-single")
        var config = source.config
        config.numLabels = 4
        let model = try TrainableModel(config: config, tensors: source.tensors, products: CPUMatrixProducts(),
                                       dropout: DropoutRates(hidden: 0.1, attention: 0.1, classifier: 0.1), newHead: true, seed: 3)
        let labels = try LabelSet(training: examples(40, seed: 1), given: nil)
        return try ClassificationTrainer(model: model, tokenizer: try tokenizer(), labels: labels, options: options)
    }

    static func directory(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    static func bytes(_ directory: String, _ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))
    }

    @Test(arguments: [1, 4, 5, 7, 10, 13])  // 5 and 10: at an epoch's end (5 steps per epoch)
    func aResumedRunEndsWithTheSameBits(stopAt: Int) throws {
        let train = Self.examples(40, seed: 1), dev = Self.examples(12, seed: 2)
        let whole = Self.directory("whole-\(stopAt)"), parts = Self.directory("parts-\(stopAt)")
        defer { for path in [whole, parts] { try? FileManager.default.removeItem(atPath: path) } }
        let uninterrupted = try Self.trainer().run(train: train, eval: dev, output: whole, tokenizerDirectory: nil)
        #expect(uninterrupted.steps == 14 && !uninterrupted.interrupted)

        let first = try Self.trainer()
        var steps = 0
        first.progress = { if $0.evaluation == nil { steps = $0.step } }
        first.shouldStop = { steps >= stopAt }
        let stopped = try first.run(train: train, eval: dev, output: parts, tokenizerDirectory: nil)
        #expect(stopped.interrupted && stopped.steps == stopAt)
        #expect(stopped.checkpoint?.hasSuffix("checkpoint-\(stopAt)") == true, "\(stopped.checkpoint ?? "none")")

        let resumed = try Self.trainer().run(train: train, eval: dev, output: parts, tokenizerDirectory: nil, resume: true)
        #expect(resumed.steps == 14 && !resumed.interrupted)
        #expect(resumed.best == uninterrupted.best)
        #expect(try Self.bytes(parts, "model.safetensors") == (try Self.bytes(whole, "model.safetensors")), "the best model's bits")
        #expect(try Self.bytes(parts, "metrics.jsonl") == (try Self.bytes(whole, "metrics.jsonl")))
    }

    @Test func checkpointsAreTheNewestAndHoldTheOptimizer() throws {
        var options = Self.options()
        (options.saveEvery, options.saveTotalLimit) = (4, 2)
        let output = Self.directory("pruned")
        defer { try? FileManager.default.removeItem(atPath: output) }
        // What a save killed half-way leaves is cleaned up, never read.
        try FileManager.default.createDirectory(atPath: output + "/.checkpoint-2.partial-1", withIntermediateDirectories: true)
        let trainer = try Self.trainer(options)
        _ = try trainer.run(train: Self.examples(40, seed: 1), eval: nil, output: output, tokenizerDirectory: nil)
        let entries = try FileManager.default.contentsOfDirectory(atPath: output).sorted()
        #expect(entries == ["checkpoint-12", "checkpoint-8", "config.json", "metrics.jsonl", "model.safetensors"], "\(entries)")
        let moments = try SafeTensorsFile(path: output + "/checkpoint-12/optimizer.safetensors")
        #expect(moments.metadata["steps"] == "12")
        #expect(moments.tensors.count == 2 * trainer.model.trainableParameters.count)
        #expect(moments.tensors["classifier.weight.exp_avg_sq"]?.shape == [4, 18])
        let state = try JSONSerialization.jsonObject(with: Self.bytes(output + "/checkpoint-12", "trainer_state.json")) as? [String: Any]
        #expect((state?["state"] as? [String: Any])?["step"] as? Int == 12)
    }

    @Test func aResumeWithOtherOptionsOrDataIsRefused() throws {
        var options = Self.options()
        options.saveEvery = 5
        let output = Self.directory("refused")
        defer { try? FileManager.default.removeItem(atPath: output) }
        let train = Self.examples(40, seed: 1)
        _ = try Self.trainer(options).run(train: train, eval: nil, output: output, tokenizerDirectory: nil)
        func refusal(_ options: TrainingOptions, _ data: [LabeledText], resume: Bool = true) -> String {
            do {
                _ = try Self.trainer(options).run(train: data, eval: nil, output: output, tokenizerDirectory: nil, resume: resume)
                return "none"
            } catch {
                return "\(error)"
            }
        }
        var other = options
        other.batchSize = 8
        #expect(refusal(other, train).contains("trained with --batch-size 4, this run asks --batch-size 8"))
        #expect(refusal(options, Array(train.dropLast())).contains("the training data are not those the checkpoint was trained on"))
        #expect(refusal(options, train, resume: false).contains("add --resume"))
        other = options
        other.evalEvery = 2  // what only evaluates may change
        #expect(refusal(other, train) == "none")
    }

    @Test func frozenLayersStayAndTheTopGetsTheWholeGradient() throws {
        let all = try Self.trainer(), top = try Self.trainer()
        top.model.trainedLayers = 1
        let names = top.model.trainableParameters.map(\.name)
        #expect(names.allSatisfy { $0.hasPrefix("bert.encoder.layer.1.") || $0.hasPrefix("bert.encoder.ln.") || $0.hasPrefix("bert.pooler.") || $0.hasPrefix("classifier.") })
        #expect(names.contains("bert.encoder.layer.1.attention.self.query.weight") && names.contains("bert.encoder.ln.weight"))
        let ids = [[2, 10, 12, 3, 0], [2, 9, 3, 0, 0]], types = [[Int]](repeating: [0, 0, 0, 0, 0], count: 2)
        let mask = [[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]]
        for trainer in [all, top] {
            var random = SeededRandom(seed: 9)
            _ = try trainer.model.step(ids: ids, types: types, mask: mask, targets: [1, 2], loss: .crossEntropy, random: &random)
        }
        for parameter in top.model.parameterList {
            let gradient = parameter.gradient.toArray()
            if top.model.isTrained(parameter.name) {
                #expect(gradient == all.model.parameters[parameter.name]?.gradient.toArray(), "\(parameter.name)")
            } else {
                #expect(gradient.allSatisfy { $0 == 0 }, "\(parameter.name) is frozen")
            }
        }
        // A run with the head only changes nothing else.
        var options = Self.options()
        options.trainLayers = 0
        let head = try Self.trainer(options), before = head.model.parameterList.map { ($0.name, $0.value.toArray()) }
        let output = Self.directory("head")
        defer { try? FileManager.default.removeItem(atPath: output) }
        _ = try head.run(train: Self.examples(40, seed: 1), eval: nil, output: output, tokenizerDirectory: nil)
        for (name, values) in before {
            let changed = head.model.parameters[name]?.value.toArray() != values
            #expect(changed == (name.hasPrefix("classifier.") || name.hasPrefix("bert.pooler.")), "\(name)")
        }
    }
    /// NER sentences of 2–8 words (every third with "cat dog" put in): animals tagged B-ANIMAL (I-ANIMAL when an
    /// animal follows an animal), colours B-COLOR, the rest O.
    static func tagged(_ count: Int, seed: UInt64) -> [TaggedSentence] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { i in
            var words = (0..<(2 + Int(random.next() % 7))).map { _ in Self.words[Int(random.next() % UInt64(Self.words.count))] }
            if i % 3 == 0 { words.insert(contentsOf: ["cat", "dog"], at: Int(random.next() % UInt64(words.count))) }
            var tags: [String] = []
            for (k, word) in words.enumerated() {
                if ["cat", "dog", "bird"].contains(word) {
                    tags.append(k > 0 && tags[k - 1].hasSuffix("ANIMAL") ? "I-ANIMAL" : "B-ANIMAL")
                } else {
                    tags.append(["red", "green", "blue"].contains(word) ? "B-COLOR" : "O")
                }
            }
            return TaggedSentence(words: words, tags: tags, location: "ner:\(i + 1)")
        }
    }

    static func tagger(_ options: TrainingOptions) throws -> ClassificationTrainer {
        let source = try TrainableModelTests.source("megatron-token")
        let labels = try LabelSet(tagged: tagged(60, seed: 1))
        var config = source.config
        config.numLabels = labels.names.count
        let model = try TrainableModel(config: config, tensors: source.tensors, products: CPUMatrixProducts(), head: .tokenClassification,
                                       dropout: DropoutRates(hidden: 0.1, attention: 0.1, classifier: 0.1), newHead: true, seed: 3)
        return try ClassificationTrainer(model: model, tokenizer: try tokenizer(), labels: labels, options: options)
    }

    /// A token classifier learns the tags (entity F1 from seqeval's rules on held-out sentences), its metrics are
    /// run_ner's names, and a run stopped and resumed ends with the same bits.
    @Test func nerLearnsAndResumes() throws {
        var options = Self.options()
        (options.maxSteps, options.evalEvery, options.metric, options.learningRate) = (200, 50, "f1", 5e-3)
        options.gradientAccumulation = 1
        let train = Self.tagged(60, seed: 1), dev = Self.tagged(20, seed: 2)
        #expect(try LabelSet(tagged: train).names == ["B-ANIMAL", "B-COLOR", "I-ANIMAL", "O"])
        let whole = Self.directory("ner-whole"), parts = Self.directory("ner-parts")
        defer { for path in [whole, parts] { try? FileManager.default.removeItem(atPath: path) } }
        let summary = try Self.tagger(options).run(tagged: train, eval: dev, output: whole, tokenizerDirectory: nil)
        let best = try #require(summary.best)
        #expect(Set(best.keys).isSuperset(of: ["loss", "precision", "recall", "f1", "accuracy", "ANIMAL_f1", "COLOR_number"]))
        let lines = String(decoding: try Self.bytes(whole, "metrics.jsonl"), as: UTF8.self)
        #expect(best["f1"] ?? 0 > 0.7, "\(best) \(lines)")
        let first = try Self.tagger(options)
        var steps = 0
        first.progress = { if $0.evaluation == nil { steps = $0.step } }
        first.shouldStop = { steps >= 13 }
        _ = try first.run(tagged: train, eval: dev, output: parts, tokenizerDirectory: nil)
        _ = try Self.tagger(options).run(tagged: train, eval: dev, output: parts, tokenizerDirectory: nil, resume: true)
        #expect(try Self.bytes(parts, "model.safetensors") == (try Self.bytes(whole, "model.safetensors")))
        #expect(try Self.bytes(parts, "metrics.jsonl") == (try Self.bytes(whole, "metrics.jsonl")))
        // Tagged sentences train a token classifier only, and a tag outside the labels is named.
        #expect(throws: TrainingError.self) { try Self.trainer().run(tagged: train, eval: nil, output: parts + "-x", tokenizerDirectory: nil) }
        var unknown = dev
        unknown[3].tags[0] = "B-PLANT"
        do {
            _ = try Self.tagger(options).evaluation(tagged: unknown)
            Issue.record("an unknown tag evaluated")
        } catch let error as TrainingError {
            #expect(error.description.contains("ner:4") && error.description.contains("B-PLANT"), "\(error)")
        }
    }
    /// With a stride, long sentences become windows that label every word once: training targets cover the sentence's
    /// labelled tokens, and evaluation counts each word once (the same supports as without windows), from the window
    /// where it has the most context; a tagger trained on windows of 7 tokens learns as one trained on whole sentences.
    @Test func nerWindowsLabelEveryWordOnce() throws {
        var options = Self.options()
        (options.maxSteps, options.evalEvery, options.metric, options.learningRate, options.gradientAccumulation) = (200, 50, "f1", 5e-3, 1)
        let sentences = Self.tagged(150, seed: 1).filter { $0.words.count <= 8 }, dev = Self.tagged(40, seed: 2).filter { $0.words.count <= 8 }
        var windowed = options
        (windowed.maxLength, windowed.wordStride) = (7, 2)
        let tagger = try Self.tagger(windowed), whole = try Self.tagger(options)
        let windows = try tagger.prepare(tagged: sentences), plain = try whole.prepare(tagged: sentences)
        #expect(windows.count > plain.count && windows.allSatisfy { $0.encoding.count <= 7 })
        for (number, example) in plain.enumerated() {
            var labelled = Set<Int>()
            for window in windows where window.sentence == number {
                for (position, target) in window.targets.enumerated() where target != -100 {
                    labelled.insert(window.start + position)
                    #expect(example.targets[window.start + position] == target)
                }
            }
            #expect(labelled == Set(example.targets.indices.filter { example.targets[$0] != -100 }), "sentence \(number)")
        }
        let scores = try tagger.evaluation(tagged: dev), reference = try whole.evaluation(tagged: dev)
        for key in reference.keys where key.hasSuffix("_number") { #expect(scores[key] == reference[key], "\(key)") }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("ner-windows-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let summary = try Self.tagger(windowed).run(tagged: sentences, eval: dev, output: output, tokenizerDirectory: nil)
        let plainSummary = try Self.tagger(options).run(tagged: sentences, eval: dev, output: output + "-plain", tokenizerDirectory: nil)
        defer { try? FileManager.default.removeItem(atPath: output + "-plain") }
        let f1 = summary.best?["f1"] ?? 0, plainF1 = plainSummary.best?["f1"] ?? 0
        #expect(f1 > 0.45 && abs(f1 - plainF1) <= 0.1, "windows: F1 \(f1); whole sentences: \(plainF1)")
    }

    /// Words past --max-length are counted in a warning, and left without labels (run_ner drops them the same way).
    @Test func wordsPastTheLimitAreReported() throws {
        var options = Self.options()
        options.maxLength = 5
        let tagger = try Self.tagger(options)
        var warnings: [String] = []
        tagger.warn = { warnings.append($0) }
        let sentence = TaggedSentence(words: ["the", "red", "cat", "runs", "on", "the"], tags: ["O", "B-COLOR", "B-ANIMAL", "O", "O", "O"],
                                      location: "x:1")
        let prepared = try tagger.prepare(tagged: [sentence, TaggedSentence(words: ["a", "dog"], tags: ["O", "B-ANIMAL"], location: "x:2")])
        #expect(prepared[0].targets == [-100, 3, 1, 0, -100] && prepared[1].targets == [-100, 3, 0, -100])
        #expect(warnings == ["1 of 2 sentences are longer than 5 tokens: 3 words past --max-length go unlabelled (raise --max-length, or --stride N for windows)"], "\(warnings)")
    }
}
