import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel

@Suite struct FillMaskTests {
    @Test func matchesTheReference() throws {
        let pipeline = try TaskFixtures.pipeline("pretraining")
        for item in try TaskFixtures.cases("fill_mask") {
            let targets = item["targets"] as? [String]
            let ours = try pipeline.fillMask([item.string("text")], topK: item.int("top_k")!, targets: targets)[0]
            let reference = item["predictions"] as! [[[String: Any]]]
            #expect(ours.count == reference.count, "\(item.string("text")): one list per mask")
            for (mine, theirs) in zip(ours, reference) {
                #expect(mine.map(\.token) == theirs.map { $0.int("token")! }, "\(item.string("text"))")
                #expect(mine.map(\.tokenString) == theirs.map { $0.string("token_str") })
                #expect(mine.map(\.sequence) == theirs.map { $0.string("sequence") })
                for (a, b) in zip(mine, theirs) { #expect(abs(a.score - b.double("score")) <= TaskFixtures.tolerance) }
            }
        }
    }

    /// The logits at chosen positions are the full forward's rows there (fixture batch, both MLM heads).
    @Test func maskedLMLogitsAtPositionsAreTheFullRows() throws {
        for name in ["megatron-ForPreTraining", "megatron-ForMaskedLM"] {
            let model = try MegatronBERTModel(path: Fixtures.model(name))
            let batch = try Fixtures.batch()
            let full = try #require(model.forward(batch).headOutputs.first?.tensor)  // (B, S, V)
            let positions = [(row: 0, position: 0), (row: 2, position: 4), (row: 1, position: 1)]
            let picked = try model.maskedLMLogits(batch, at: positions)
            let s = full.shape[1], v = full.shape[2]
            #expect(picked.shape == [3, v])
            for (i, p) in positions.enumerated() {
                let worst = (0..<v).map { abs(picked[i * v + $0] - full[(p.row * s + p.position) * v + $0]) }.max()!
                #expect(worst < 1e-5, "\(name) \(p): \(worst)")
            }
            #expect(throws: ModelError.self) { try model.maskedLMLogits(batch, at: [(row: 3, position: 0)]) }
        }
        #expect(throws: ModelError.self) { try MegatronBERTModel(path: Fixtures.model("megatron-Model")).maskedLMLogits(Fixtures.batch(), at: []) }
    }

    @Test func neverPredictsPaddedRowsOrSpecialTokens() throws {
        let pipeline = try TaskFixtures.pipeline("pretraining")
        let size = pipeline.tokenizer.vocabulary.count
        #expect(pipeline.model.config.vocabSize == size + 5)
        let all = try pipeline.fillMask(["The capital of France is [MASK] ."], topK: 1000)[0][0]
        #expect(all.count == size - pipeline.tokenizer.specialTokenIDs.count)
        #expect(all.allSatisfy { $0.token < size && !pipeline.tokenizer.specialTokenIDs.contains($0.token) })
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.score >= $1.score })
    }

    @Test func batchingDoesNotChangeAnswers() throws {
        let texts = ["The capital of France is [MASK].", "[MASK] lives in New York and works at [MASK].", "[MASK]"]
        let one = try TaskFixtures.pipeline("pretraining", batchSize: 1).fillMask(texts)
        let three = try TaskFixtures.pipeline("pretraining", batchSize: 3).fillMask(texts)
        #expect(one.map { $0.map { $0.map(\.token) } } == three.map { $0.map { $0.map(\.token) } })
        for (a, b) in zip(one.joined().joined(), three.joined().joined()) { #expect(abs(a.score - b.score) < 1e-5) }
    }

    @Test func explainsBadInput() throws {
        let pipeline = try TaskFixtures.pipeline("pretraining")
        #expect(throws: ModelError.self) { try pipeline.fillMask(["No mask here."]) }
        #expect((try? pipeline.fillMask(["No mask here."])) == nil)
        do {
            _ = try pipeline.fillMask(["No mask here."])
        } catch let error as ModelError {
            #expect(error.message.contains("no [MASK]"))
        }
        let long = Array(repeating: "John", count: 40).joined(separator: " ") + " [MASK]"
        #expect(throws: ModelError.self) { try pipeline.fillMask([long]) }
        #expect(throws: ModelError.self) { try pipeline.fillMask(["[MASK]"], targets: ["Zürich"]) }
        #expect(throws: ModelError.self) { try pipeline.fillMask(["[MASK]"], topK: 0) }
        let classifier = try TaskFixtures.pipeline("classification")
        do {
            _ = try classifier.fillMask(["[MASK]"])
            Issue.record("a classifier cannot fill masks")
        } catch let error as ModelError {
            #expect(error.message.contains("MegatronBertForPreTraining or MegatronBertForMaskedLM"))
        }
    }

    @Test func warnsWhenTruncating() throws {
        let warnings = WarningLog()
        let pipeline = try Pipeline(path: TaskFixtures.root + "/pretraining", warn: { warnings.append($0) })
        let long = "[MASK] " + Array(repeating: "John", count: 40).joined(separator: " ")
        #expect(try pipeline.fillMask([long]).count == 1)
        #expect(warnings.messages.contains { $0.contains("truncated") })
    }
}

/// Collects a pipeline's warnings.
final class WarningLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ message: String) { lock.lock(); stored.append(message); lock.unlock() }
    var messages: [String] { lock.lock(); defer { lock.unlock() }; return stored }
}
