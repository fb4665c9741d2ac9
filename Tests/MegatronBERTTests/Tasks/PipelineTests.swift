import Foundation
import Testing
import BERTTokenizer
@testable import MegatronBERT

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
        let small = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-\(UUID().uuidString).txt").path
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
        let encodings = try ["John lives in Paris .", "John", "Paris is big", "a"].map { try pipeline.tokenizer.encode($0) }
        var seen: [[Int]] = [], lengths: [Int] = []
        try pipeline.forEachBatch(encodings, runHead: false) { outputs, rows in
            seen.append(rows)
            lengths.append(outputs.lastHiddenState.shape[1])
        }
        #expect(seen == [[1, 3], [2, 0]])
        #expect(lengths == [3, 7], "each batch padded to its own longest")
    }
}
