import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel

@Suite struct BatchTests {
    static let model = try! MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"))

    static func message(_ batch: Batch) -> String {
        do {
            _ = try model.forward(batch)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func idsOutsideTheVocabulary() {
        #expect(Self.message(Batch(inputIDs: [[2, 53]])).contains("input_ids[0] holds 53, outside 0..<53"))
        #expect(Self.message(Batch(inputIDs: [[2, -1]])).contains("holds -1"))
        #expect(Self.message(Batch(inputIDs: [[2, 3]], tokenTypeIDs: [[0, 2]])).contains("token_type_ids[0] holds 2, outside 0..<2"))
    }

    @Test func sequencesLongerThanThePositions() {
        let text = Self.message(Batch(inputIDs: [Array(repeating: 5, count: 13)]))
        #expect(text.contains("sequence length 13 exceeds max_position_embeddings 12"), "\(text)")
    }

    @Test func raggedOrEmptyBatches() {
        #expect(Self.message(Batch(inputIDs: [[2, 3], [2]])).contains("different lengths"))
        #expect(Self.message(Batch(inputIDs: [])).contains("input_ids is empty"))
        #expect(Self.message(Batch(inputIDs: [[]])).contains("input_ids is empty"))
        #expect(Self.message(Batch(inputIDs: [[2, 3]], attentionMask: [[1]])).contains("attention_mask must have the same shape"))
        #expect(Self.message(Batch(inputIDs: [[2, 3]], attentionMask: [[1, 2]])).contains("attention_mask holds 2"))
    }

    @Test func multipleChoiceNeedsThreeDimensions() throws {
        let mc = try MegatronBERTModel(path: Fixtures.model("megatron-ForMultipleChoice"))
        #expect(throws: ModelError.self) { try mc.forward(Batch(inputIDs: [[2, 3]])) }
        let outputs = try mc.forward(try Fixtures.batch("batch_mc"))
        #expect(outputs["logits"]?.shape == [2, 3])
    }

    @Test(arguments: [
        (#"{"input_ids": [[1, 2]], "attention_mask": [[1]]}"#, "same shape as input_ids"),
        (#"{"input_ids": [[1, 2.5]]}"#, "not an integer"),
        (#"{"input_ids": []}"#, "non-empty array"),
        (#"{"attention_mask": [[1]]}"#, "missing \"input_ids\""),
        (#"{"input_ids": [[1]], "labels": [0]}"#, "unknown key \"labels\""),
        (#"{"input_ids": [[[1, 2]], [[1, 2], [3, 4]]]}"#, "different numbers of choices"),
        (#"[1, 2]"#, "expected a JSON object"),
        (#"{"input_ids": "#, "not valid JSON"),
    ])
    func malformedBatchJSON(json: String, message: String) {
        do {
            _ = try Batch(json: Data(json.utf8))
            Issue.record("no error for \(json)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test func threeDimensionalBatchesAreFlattened() throws {
        let batch = try Batch(json: Data(#"{"input_ids": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}"#.utf8))
        #expect(batch.numChoices == 2)
        #expect(batch.inputIDs == [[1, 2], [3, 4], [5, 6], [7, 8]])
    }
}
