import Foundation
import Testing
import BERTTokenizer
import MegatronBERT
@testable import MegatronModel
import TestSupport

@Suite struct PipelineTests {
    @Test func loadsTheTokenizerBesideTheWeights() throws {
        let pipeline = try TaskFixtures.pipeline("pretraining")
        #expect(pipeline.tokenizer.vocabulary.count == 60)
        #expect(pipeline.maxLength == 24, "model_max_length caps max_position_embeddings 64")
        let explicit = try Pipeline(path: TaskFixtures.root + "/pretraining", vocabulary: TaskFixtures.root + "/vocab.txt")
        #expect(explicit.maxLength == 24, "--vocab replaces the vocabulary; the directory's tokenizer_config.json still gives model_max_length")
    }

    /// A fallback vocabulary ($MEGATRON_BERT_VOCAB) serves a model without one, and only such a model.
    @Test func aFallbackVocabularyServesOnlyModelsWithoutOne() throws {
        let small = Scratch.path("vocab.txt")
        defer { try? FileManager.default.removeItem(atPath: small) }
        try (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (0..<45).map { "w\($0)" }).joined(separator: "\n")
            .write(toFile: small, atomically: true, encoding: .utf8)
        let megatron = try Pipeline(path: Fixtures.root + "/megatron/v2-new-names.pt", fallbackVocabulary: small)
        #expect(megatron.tokenizer.vocabulary.count == 50)
        let own = try Pipeline(path: TaskFixtures.root + "/pretraining", fallbackVocabulary: small)
        #expect(own.tokenizer.vocabulary.count == 60)
    }

    @Test func explainsWhatIsMissingOrMismatched() throws {
        do {
            _ = try Pipeline(path: Fixtures.model("megatron-ForMaskedLM"))
            Issue.record("a model directory without vocab.txt or tokenizer.json has no tokenizer")
        } catch let error as ModelError {
            #expect(error.message.contains("has no tokenizer"), "\(error.message)")
            #expect(error.message.contains("--vocab"))
        }
        // The fixture models have 53 embedding rows; the task vocabulary has 60 tokens.
        do {
            _ = try Pipeline(path: Fixtures.model("megatron-ForMaskedLM"), vocabulary: TaskFixtures.root + "/vocab.txt")
            Issue.record("a vocabulary larger than the embedding cannot belong to the model")
        } catch let error as ModelError {
            #expect(error.message.contains("60 tokens but"), "\(error.message)")
        }
        #expect(throws: ModelError.self) { try TaskFixtures.pipeline("pretraining", batchSize: 0) }
    }

    @Test func batchesShortestFirstAndReportsEveryRow() throws {
        let pipeline = try TaskFixtures.pipeline("embedding", batchSize: 2)
        let rows = try ["John lives in Paris .", "John", "Paris is big", "a"].map { ModelRow(try pipeline.tokenizer.encode($0)) }
        let seen = pipeline.executor.batches(rows)
        let lengths = seen.map { batch in pipeline.executor.batch(batch.map { rows[$0] }).inputIDs[0].count }
        #expect(seen == [[1, 3], [2, 0]])
        #expect(lengths == [3, 7], "each batch padded to its own longest")
    }

    /// The encoder's work runs packed (no padding) on the CPU: shortest rows first, up to `packedTokens` tokens a
    /// pass; rows of several encodings or with padding of their own cannot be packed.
    @Test func embeddingRowsRunPackedWithinTheTokenBudget() throws {
        let pipeline = try TaskFixtures.pipeline("embedding", batchSize: 2)
        let rows = try ["John lives in Paris .", "John", "Paris is big", "a"].map { ModelRow(try pipeline.tokenizer.encode($0)) }
        #expect(pipeline.executor.packedPasses(rows) == [[1, 3, 2, 0]], "4 short rows: one pass, whatever the batch size")
        let word = try pipeline.tokenizer.encode("Paris").ids[1]
        let long = try (0..<5).map { _ in ModelRow(try pipeline.tokenizer.encoding(ids: Array(repeating: word, count: 20))) }
        let many = Array(repeating: long, count: pipeline.executor.packedTokens / 20 / 5 + 1).flatMap { $0 }
        let passes = try #require(pipeline.executor.packedPasses(many))
        #expect(passes.count == 2 && passes.allSatisfy { $0.count * 20 <= pipeline.executor.packedTokens })
        #expect(passes.joined().sorted() == Array(many.indices))
        let padded = try pipeline.tokenizer.pad([try pipeline.tokenizer.encode("a"), try pipeline.tokenizer.encode("John lives")])
        #expect(pipeline.executor.packedPasses([ModelRow(padded[0])]) == nil)
        #expect(pipeline.executor.packedPasses([ModelRow(choices: padded)]) == nil)
        // The packed outputs are the padded batch's at the real tokens (≤ 1e-5, as PackedForwardTests).
        let packed = try pipeline.executor.run(rows, work: .encoder)
        let batch = pipeline.executor.batch(rows)
        let reference = try pipeline.model.forward(batch, runHead: false).lastHiddenState  // (B, S, H)
        let h = pipeline.model.config.hiddenSize, s = batch.inputIDs[0].count
        for (b, (row, output)) in zip(rows, packed).enumerated() {
            let hidden = try #require(output.hidden)
            #expect(hidden.count == row.length * h)
            #expect(hidden.indices.allSatisfy { abs(hidden[$0] - reference[b * s * h + $0]) <= 1e-5 }, "row \(b)")
        }
    }

    /// Runs every row alone, last first: a stand-in for a server's executor, which batches rows its own way.
    struct OneAtATime: BatchExecutor {
        let inner: SortedBatchExecutor
        var model: MegatronBERTModel { inner.model }
        func run(_ rows: [ModelRow], work: RowWork) throws -> [RowOutput] {
            var outputs = [RowOutput?](repeating: nil, count: rows.count)
            for i in rows.indices.reversed() { outputs[i] = try inner.run([rows[i]], work: work)[0] }
            return outputs.map { $0! }
        }
    }

    /// Tasks are prepare → any executor → finish: rows run one at a time in reverse give the pipeline's results.
    @Test func anyExecutorGivesTheSameResults() throws {
        let texts = ["John lives in Paris .", "Paris", "John Smith is [MASK] in Paris with John ."]
        let ner = try TaskFixtures.pipeline("ner", batchSize: 2)
        let nerTask = try TokenClassificationTask(pipeline: ner, aggregation: .simple)
        let (rows, plan) = try nerTask.prepare(texts)
        let alone = try nerTask.finish(try OneAtATime(inner: ner.executor).run(rows, work: nerTask.work), plan: plan)
        let together = try ner.entities(texts, aggregation: .simple)
        // The same entities; scores may differ in the last bits (batches padded to other lengths change GEMM shapes).
        #expect(alone.map { $0.map(\.word) } == together.map { $0.map(\.word) })
        #expect(alone.map { $0.map(\.start) } == together.map { $0.map(\.start) })
        #expect(zip(alone.joined(), together.joined()).allSatisfy { abs($0.score - $1.score) < 1e-6 })

        let choice = try TaskFixtures.pipeline("multiple-choice", batchSize: 2)
        let examples = [ChoiceInput(prompt: "John lives in", choices: ["Paris .", "a"]),
                        ChoiceInput(prompt: "Paris", choices: ["is big", "John", "a"]),
                        ChoiceInput(prompt: "a", choices: ["b", "Paris is big ."])]
        let batched = try choice.multipleChoice(examples)
        for (example, result) in zip(examples, batched) {
            let single = try choice.multipleChoice(prompt: example.prompt, choices: example.choices)
            #expect(single.map(\.index) == result.map(\.index))
            #expect(zip(single, result).allSatisfy { abs($0.score - $1.score) < 1e-6 })
        }
    }
}
