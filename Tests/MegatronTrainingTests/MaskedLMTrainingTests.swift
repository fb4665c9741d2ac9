import Foundation
import Testing
import BERTTokenizer
import MegatronCPU
import MegatronModel
import TensorFiles
@testable import MegatronTraining

/// Masked-LM training: run_mlm's sequences (packed blocks, line by line), the data collators' masking rules (15% of
/// the non-special tokens, 80/10/10; whole words within round(15%)), and runs that lower the held-out perplexity,
/// resume to the same bits and keep a pre-training checkpoint's next-sentence head as it was.
@Suite struct MaskedLMTrainingTests {
    static let texts = (0..<60).map { i -> String in
        var random = SeededRandom(seed: UInt64(i + 1))
        // A pattern a tiny model can learn: colours come before animals, "is" before "big" or "small".
        return (0..<(3 + Int(random.next() % 4))).map { _ in
            ["red cat", "green dog", "blue bird", "the sun is big", "the moon is small"][Int(random.next() % 5)]
        }.joined(separator: " and ")
    }

    @Test func sequencesArePackedAsRunMLMPacksThem() throws {
        let tokenizer = try ClassificationTrainerTests.tokenizer()
        let documents = ["red cat", "the sun is big", "a dog"]  // 4 + 6 + 4 tokens with [CLS] and [SEP]
        let packed = try MaskedLMData.sequences(documents, tokenizer: tokenizer, maxLength: 5)
        let all = try documents.flatMap { try tokenizer.encode($0).ids }
        #expect(packed.map(\.ids) == [Array(all[0..<5]), Array(all[5..<10])], "two blocks of 5; the last 4 tokens dropped")
        #expect(packed[1].specialTokensMask == [0, 0, 0, 0, 1] && packed[0].wordIDs == [nil, 0, 1, nil, nil])
        #expect(packed[1].wordIDs == [2, 3, 4, 5, nil], "word indices stay distinct across documents")
        let short = try MaskedLMData.sequences(["red cat"], tokenizer: tokenizer, maxLength: 8)
        #expect(short.map(\.count) == [4], "one block shorter than the length is kept")
        let lines = try MaskedLMData.sequences(documents, tokenizer: tokenizer, maxLength: 5, lineByLine: true)
        #expect(lines.map(\.count) == [4, 5, 4] && lines[1].ids.last == tokenizer.vocabulary.id(of: "[SEP]"))
    }

    @Test func maskingFollowsTheCollatorsRules() {
        let masking = MaskedLMMasking(maskID: 4, vocabularySize: 1000)
        var random = SeededRandom(seed: 9)
        let rows = 400, s = 64
        let original = (0..<rows).map { _ in (0..<s).map { _ in 5 + Int(random.next() % 995) } }
        let lengths = (0..<rows).map { 40 + $0 % 25 }
        let special = lengths.map { n in (0..<s).map { $0 == 0 || $0 >= n - 1 } }  // [CLS], [SEP] and padding
        var ids = original
        let targets = masking.apply(to: &ids, special: special, words: original.map { $0.map { _ in nil } }, lengths: lengths, &random)
        var chosen = 0, candidates = 0, masked = 0, kept = 0
        for row in 0..<rows {
            for t in 0..<s {
                let target = targets[row * s + t]
                if special[row][t] {
                    #expect(target == -100 && ids[row][t] == original[row][t])
                    continue
                }
                candidates += 1
                guard target != -100 else { #expect(ids[row][t] == original[row][t]); continue }
                chosen += 1
                #expect(target == Double(original[row][t]))
                if ids[row][t] == 4 { masked += 1 } else if ids[row][t] == original[row][t] { kept += 1 }
            }
        }
        let fraction = Double(chosen) / Double(candidates)
        #expect(abs(fraction - 0.15) < 0.01, "chosen \(fraction)")
        #expect(abs(Double(masked) / Double(chosen) - 0.8) < 0.02 && abs(Double(kept) / Double(chosen) - 0.1) < 0.02,
                "[MASK] \(Double(masked) / Double(chosen)), left \(Double(kept) / Double(chosen))")
        // Whole words: a word's tokens together, within round(15% of the tokens) — 13 tokens of 40 give round(1.95) = 2
        // and of 30 round(4.5) = 4 (half to even, as Python rounds).
        let whole = MaskedLMMasking(maskID: 4, vocabularySize: 1000, wholeWords: true)
        for length in [13, 30] {
            let words: [Int?] = [nil] + (0..<(length - 2)).map { $0 / 3 } + [nil]
            let flags = words.map { $0 == nil }
            var row = [(0..<length).map { 5 + $0 }]
            let picked = whole.apply(to: &row, special: [flags], words: [words], lengths: [length], &random)
            let chosenTokens = picked.indices.filter { picked[$0] != -100 }
            let chosenWords = Set(chosenTokens.compactMap { words[$0] })
            #expect(chosenTokens.count == chosenWords.reduce(0) { sum, w in sum + words.filter { $0 == w }.count }, "whole words only")
            #expect(chosenTokens.count <= (length == 13 ? 2 : 4) && !chosenTokens.isEmpty, "\(length): \(chosenTokens)")
        }
        // A batch too small for a draw still predicts one token.
        var tiny = [[2, 7, 3]]
        var alwaysMisses = SeededRandom(seed: 1)
        let none = MaskedLMMasking(maskID: 4, vocabularySize: 1000, probability: 1e-9)
        #expect(none.apply(to: &tiny, special: [[true, false, true]], words: [[nil, 0, nil]], lengths: [3], &alwaysMisses) == [-100, 7, -100])
    }

    static func trainer(_ name: String, steps: Int = 120) throws -> ClassificationTrainer {
        let source = try TrainableModelTests.source(name)
        let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(),
                                       head: TrainableModelTests.head(source), dropout: DropoutRates(hidden: 0.1, attention: 0.1, classifier: 0.1))
        var options = TrainingOptions()
        (options.maxSteps, options.batchSize, options.evalEvery, options.metric) = (steps, 8, 40, "perplexity")
        (options.learningRate, options.warmupRatio, options.seed, options.maxLength) = (3e-3, 0.1, 5, 10)
        return try ClassificationTrainer(model: model, tokenizer: try ClassificationTrainerTests.tokenizer(), labels: .languageModel, options: options)
    }

    @Test func perplexityFallsAndAResumedRunIsTheSame() throws {
        let train = Array(Self.texts[0..<48]), dev = Array(Self.texts[48...])
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("mlm-run-\(UUID().uuidString)").path
        let whole = base + "-whole", parts = base + "-parts"
        defer { for path in [whole, parts] { try? FileManager.default.removeItem(atPath: path) } }
        let before = try Self.trainer("megatron-mlm").evaluation(texts: dev)
        let summary = try Self.trainer("megatron-mlm").run(texts: train, eval: dev, output: whole, tokenizerDirectory: nil)
        let best = try #require(summary.best)
        #expect(Set(best.keys) == ["loss", "perplexity"] && abs((best["perplexity"] ?? 0) - exp(best["loss"] ?? 0)) < 1e-9)
        #expect((best["perplexity"] ?? .infinity) < 0.5 * (before["perplexity"] ?? 0), "perplexity \(before) → \(best)")
        let config = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: whole + "/config.json")))
        #expect(config.object?["architectures"]?.array?.first?.string == "MegatronBertForMaskedLM")
        let first = try Self.trainer("megatron-mlm")
        var steps = 0
        first.progress = { if $0.evaluation == nil { steps = $0.step } }
        first.shouldStop = { steps >= 53 }
        _ = try first.run(texts: train, eval: dev, output: parts, tokenizerDirectory: nil)
        _ = try Self.trainer("megatron-mlm").run(texts: train, eval: dev, output: parts, tokenizerDirectory: nil, resume: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: parts + "/model.safetensors")) == Data(contentsOf: URL(fileURLWithPath: whole + "/model.safetensors")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: parts + "/metrics.jsonl")) == Data(contentsOf: URL(fileURLWithPath: whole + "/metrics.jsonl")))
    }

    /// The trainer's batches never choose a special id — [UNK] in the text, [MASK] typed by the user — nor [CLS],
    /// [SEP] or padding, as the collator's `get_special_tokens_mask(already_has_special_tokens=True)`; every other
    /// token is chosen at probability 1.
    @Test func specialIDsAreNeverChosen() throws {
        let trainer = try Self.trainer("megatron-mlm")
        let tokenizer = try ClassificationTrainerTests.tokenizer()
        let encodings = try ["red zebra cat [MASK]", "the sun"].map { try tokenizer.encode($0) }
        let examples = encodings.map { ClassificationTrainer.Prepared(encoding: $0, targets: []) }
        let s = encodings.map(\.count).max()!
        let ids = encodings.map { $0.ids + [Int](repeating: tokenizer.padTokenID, count: s - $0.count) }
        let batch = (ids: ids, types: ids.map { $0.map { _ in 0 } }, mask: encodings.map { e in (0..<s).map { $0 < e.count ? 1 : 0 } }, targets: [Double]())
        var random = SeededRandom(seed: 1)
        let every = MaskedLMMasking(maskID: tokenizer.maskTokenID!, vocabularySize: tokenizer.vocabulary.count, probability: 1)
        let (_, positions) = trainer.masked(batch, examples, [0, 1][...], every, &random)
        let special = tokenizer.specialTokenIDs
        #expect(ids[0].contains(tokenizer.unknownTokenID) && ids[0].contains(tokenizer.maskTokenID!))
        let expected = (0..<(2 * s)).filter { !special.contains(ids[$0 / s][$0 % s]) }
        #expect(positions == expected, "chosen \(positions); ids \(ids)")
    }

    /// A pre-training checkpoint stays one: its next-sentence head (pooler and seq_relationship) keeps every weight.
    @Test func aPreTrainingCheckpointKeepsItsNextSentenceHead() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("mlm-pretraining-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let trainer = try Self.trainer("megatron-pretraining", steps: 10)
        _ = try trainer.run(texts: Self.texts, eval: nil, output: output, tokenizerDirectory: nil)
        let before = try TrainableModelTests.source("megatron-pretraining").tensors, after = try SafeTensorsFile(path: output + "/model.safetensors").tensors
        for name in ["cls.seq_relationship.weight", "cls.seq_relationship.bias", "bert.pooler.dense.weight"] {
            #expect(try #require(after[name]).toFloats() == (try #require(before[name]).toFloats()), "\(name)")
        }
        #expect(try #require(after["cls.predictions.bias"]).toFloats() != (try #require(before["cls.predictions.bias"]).toFloats()))
        let config = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: output + "/config.json")))
        #expect(config.object?["architectures"]?.array?.first?.string == "MegatronBertForPreTraining")
    }
}
