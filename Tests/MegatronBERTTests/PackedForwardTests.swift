import Foundation
import Testing
import BERTTokenizer
@testable import MegatronBERT

/// Sequences packed end to end (`forwardPacked`, what the executor runs for embeddings on the CPU) give the padded
/// forward pass's numbers at every real token and the same pooled vectors: max |Δ| ≤ 1e-5 (the same bits where the
/// products do not depend on the number of rows, as oneDNN's brgemm on AVX-512; measured 0 there).
@Suite struct PackedForwardTests {
    @Test(arguments: ["megatron-Model", "bert-Model", "bert-Model-gelu_new"])
    func packedIsThePaddedForward(name: String) throws {
        let model = try MegatronBERTModel(path: Fixtures.model(name))
        let batch = try Fixtures.batch()
        let mask = try #require(batch.attentionMask), types = try #require(batch.tokenTypeIDs)
        let lengths = mask.map { $0.firstIndex(of: 0) ?? $0.count }
        #expect(Set(lengths).count > 1, "the fixture batch has padding")
        let padded = try model.forward(batch, runHead: false)  // (B, S, H)
        let packed = try model.forwardPacked(ids: zip(batch.inputIDs, lengths).map { Array($0.prefix($1)) },
                                             types: zip(types, lengths).map { Array($0.prefix($1)) })
        let h = model.config.hiddenSize, s = batch.inputIDs[0].count
        #expect(packed.segments.map(\.count) == lengths)
        var worst: Float = 0
        for (b, rows) in packed.segments.enumerated() {
            for (j, row) in rows.enumerated() {
                for k in 0..<h { worst = max(worst, abs(packed.lastHiddenState[row * h + k] - padded.lastHiddenState[(b * s + j) * h + k])) }
            }
        }
        if let pooled = padded.poolerOutput {
            let mine = try #require(packed.poolerOutput)
            for i in 0..<pooled.count { worst = max(worst, abs(pooled[i] - mine[i])) }
        }
        #expect(worst <= 1e-5, "\(name): \(worst)")
    }

    @Test func badPackedInputsAreErrors() throws {
        let model = try MegatronBERTModel(path: Fixtures.model("megatron-Model"))
        #expect(throws: ModelError.self) { try model.forwardPacked(ids: [], types: []) }
        #expect(throws: ModelError.self) { try model.forwardPacked(ids: [[1, 2], []], types: [[0, 0], []]) }
        #expect(throws: ModelError.self) { try model.forwardPacked(ids: [[1, 2]], types: [[0]]) }
        #expect(throws: ModelError.self) { try model.forwardPacked(ids: [[1, 99_999]], types: [[0, 0]]) }
        let tooLong = Array(repeating: 1, count: model.config.maxPositionEmbeddings + 1)
        #expect(throws: ModelError.self) { try model.forwardPacked(ids: [tooLong], types: [tooLong.map { _ in 0 }]) }
    }
}
