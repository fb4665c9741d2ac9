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

    /// Documents of one topic each (the topic cycling through four word sets), 2–6 sentences of 1–3 words.
    static let documents: [[String]] = (0..<80).map { d in
        let topics = [["red", "green", "blue"], ["cat", "dog", "bird"], ["one", "two", "three", "four"], ["tree", "river", "sky", "sun", "moon"]]
        var random = SeededRandom(seed: UInt64(d + 100))
        let words = topics[d % 4]
        return (0..<(2 + Int(random.next() % 5))).map { _ in
            (0..<(1 + Int(random.next() % 3))).map { _ in words[Int(random.next() % UInt64(words.count))] }.joined(separator: " ")
        }
    }

    /// BERT's sentence pairs: [CLS] A [SEP] B [SEP] with types 0 then 1, never over the length; A whole sentences of a
    /// document from where the previous pair stopped; B the sentences right after A (IsNext) or sentences of another
    /// document from a sentence's start (random, about half of the chunks with two or more sentences, every one-sentence
    /// chunk); every sentence of a document in some A or IsNext B, in order; the same pairs for the same seed.
    @Test func sentencePairsAreMadeAsBERTMakesThem() throws {
        let tokenizer = try ClassificationTrainerTests.tokenizer()
        let sep = try #require(tokenizer.vocabulary.id(of: "[SEP]")), cls = try #require(tokenizer.vocabulary.id(of: "[CLS]"))
        let sentences = try Self.documents.map { try $0.map { try tokenizer.encode($0).ids.dropFirst().dropLast().map { $0 } } }
        var random = SeededRandom(seed: 3)
        let pairs = try MaskedLMData.sentencePairs(Self.documents, tokenizer: tokenizer, maxLength: 64, random: &random)
        var again = SeededRandom(seed: 3)
        #expect(try MaskedLMData.sentencePairs(Self.documents, tokenizer: tokenizer, maxLength: 64, random: &again) == pairs)
        /// Whether `tokens` are sentences `from…` of document `d` exactly (whole sentences), and how many.
        func sentencesOf(_ d: Int, from: Int, _ tokens: [Int]) -> Int? {
            var taken: [Int] = [], k = from
            while taken.count < tokens.count && k < sentences[d].count { taken += sentences[d][k]; k += 1 }
            return taken == tokens ? k - from : nil
        }
        var next = [Int](repeating: 0, count: sentences.count), document = 0, random2 = 0, multi = 0
        for pair in pairs {
            let e = pair.encoding
            #expect(e.count <= 64 && e.ids.first == cls && e.ids.last == sep && e.ids.filter { $0 == sep }.count == 2)
            let middle = e.ids.firstIndex(of: sep)!
            #expect(e.typeIDs == (0..<e.count).map { $0 <= middle ? 0 : 1 })
            let a = Array(e.ids[1..<middle]), b = Array(e.ids[(middle + 1)..<(e.count - 1)])
            #expect(!a.isEmpty && !b.isEmpty)
            while document < sentences.count && next[document] >= sentences[document].count { document += 1 }
            // Nothing here is cut (a document has at most 18 tokens): A is the next sentences of the current document.
            guard let used = sentencesOf(document, from: next[document], a) else {
                Issue.record("A \(a) is not document \(document)'s next sentences (from \(next[document]))"); break
            }
            next[document] += used
            if pair.isRandomNext {
                random2 += 1
                let others = sentences.indices.filter { d in d != document && sentences[d].indices.contains { sentencesOf(d, from: $0, b) != nil } }
                #expect(!others.isEmpty, "B \(b) starts no other document's sentence")
            } else {
                multi += 1
                guard let more = sentencesOf(document, from: next[document], b) else { Issue.record("B \(b) does not follow A"); break }
                next[document] += more
            }
        }
        #expect(next == sentences.map(\.count), "every sentence used once, in order")
        #expect(random2 > pairs.count / 4 && multi > pairs.count / 4, "random \(random2), IsNext \(multi) of \(pairs.count)")
        // Cut to fit: pairs of at most 7 tokens, A and B never empty.
        var cut = SeededRandom(seed: 4)
        for pair in try MaskedLMData.sentencePairs(Self.documents, tokenizer: tokenizer, maxLength: 7, random: &cut) {
            let middle = try #require(pair.encoding.ids.firstIndex(of: sep))
            #expect(pair.encoding.count <= 7 && middle >= 2 && pair.encoding.count - middle >= 3)
        }
        #expect(throws: TrainingError.self) { try MaskedLMData.sentencePairs(Self.documents, tokenizer: tokenizer, maxLength: 4, random: &cut) }
    }

    /// BERT's pre-training format: sentences a line each, blank lines between documents; JSON Lines with an array.
    @Test func documentsAreReadInBERTsFormat() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("nsp-\(UUID().uuidString)").path
        defer { for ext in [".txt", ".jsonl", "-bad.jsonl"] { try? FileManager.default.removeItem(atPath: base + ext) } }
        try "\n\nred cat\n  green dog \n\n\n\nthe sun\n\n".write(toFile: base + ".txt", atomically: true, encoding: .utf8)
        #expect(try MaskedLMData.readDocuments(base + ".txt") == [["red cat", "green dog"], ["the sun"]])
        try "{\"text\": [\"red cat\", \"green dog\"]}\n{\"text\": [\"the sun\"]}\n".write(toFile: base + ".jsonl", atomically: true, encoding: .utf8)
        #expect(try MaskedLMData.readDocuments(base + ".jsonl") == [["red cat", "green dog"], ["the sun"]])
        try "{\"text\": \"red cat\"}\n".write(toFile: base + "-bad.jsonl", atomically: true, encoding: .utf8)
        #expect { try MaskedLMData.readDocuments(base + "-bad.jsonl") } throws: { "\($0)".contains("-bad.jsonl:1") && "\($0)".contains("array of sentences") }
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

    static func trainer(_ name: String, steps: Int = 120, metric: String = "perplexity") throws -> ClassificationTrainer {
        let source = try TrainableModelTests.source(name)
        let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(),
                                       head: TrainableModelTests.head(source), dropout: DropoutRates(hidden: 0.1, attention: 0.1, classifier: 0.1))
        var options = TrainingOptions()
        (options.maxSteps, options.batchSize, options.evalEvery, options.metric) = (steps, 8, 40, metric)
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

    /// Next-sentence prediction: the pooler and next-sentence head train with the masked LM, learning to tell the
    /// training pairs apart (PyTorch with the same model, kind of data, masking, dropout 0.1 and 800 steps,
    /// scripts/nsp_learning_reference.py: next-sentence loss 0.81 → 0.44, accuracy 0.39 → 0.78; here 0.86 → 0.55,
    /// 0.39 → 0.72); evaluation reports both losses (loss their
    /// sum, perplexity e^masked_lm_loss) and the next-sentence accuracy; a masked-LM model or a metric the task does
    /// not report is refused before training.
    @Test func nextSentencePredictionTrainsThePreTrainingHead() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("nsp-run-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let train = Array(Self.documents[0..<56]), dev = Array(Self.documents[56...])
        let trainer = try Self.trainer("megatron-pretraining", steps: 800)
        let trainingPairs = try trainer.sentencePairs(train, seed: trainer.options.seed), masking = try trainer.languageMasking()
        let before = try trainer.maskedEvaluation(trainingPairs, masking)
        var evaluations: [[String: Double]] = []
        trainer.progress = { if let metrics = $0.evaluation { evaluations.append(metrics) } }
        _ = try trainer.run(sentencePairsFrom: train, eval: dev, output: output, tokenizerDirectory: nil)
        let after = try trainer.maskedEvaluation(trainingPairs, masking)
        #expect(Set(after.keys) == ["loss", "masked_lm_loss", "perplexity", "next_sentence_loss", "next_sentence_accuracy"])
        for metrics in evaluations + [before, after] {
            #expect(abs(metrics["loss"]! - metrics["masked_lm_loss"]! - metrics["next_sentence_loss"]!) < 1e-9)
            #expect(abs(metrics["perplexity"]! - exp(metrics["masked_lm_loss"]!)) < 1e-9)
        }
        #expect(after["next_sentence_loss"]! < 0.75 * before["next_sentence_loss"]!
                && after["next_sentence_accuracy"]! > before["next_sentence_accuracy"]! + 0.2,
                "on the training pairs: \(before) → \(after)")
        let start = try TrainableModelTests.source("megatron-pretraining").tensors, end = try SafeTensorsFile(path: output + "/model.safetensors").tensors
        for name in ["cls.seq_relationship.weight", "bert.pooler.dense.weight", "cls.predictions.bias"] {
            #expect(try #require(end[name]).toFloats() != (try #require(start[name]).toFloats()), "\(name) trained")
        }
        #expect { try Self.trainer("megatron-mlm").run(sentencePairsFrom: train, eval: nil, output: output + "-mlm", tokenizerDirectory: nil) }
            throws: { "\($0)".contains("ForPreTraining") }
        let wrongMetric = try Self.trainer("megatron-mlm", metric: "exact")
        #expect { try wrongMetric.run(texts: Self.texts, eval: Self.texts, output: output + "-metric", tokenizerDirectory: nil) }
            throws: { "\($0)".contains("--metric exact is not one this task reports: choose one of loss, perplexity") }
        #expect(!FileManager.default.fileExists(atPath: output + "-metric"), "refused before training")
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
