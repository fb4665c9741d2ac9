import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel
@testable import MegatronCPU

@Suite struct SelfAttentionTests {
    /// Splitting the queries into blocks (as sequences longer than the CPU backend's `queryBlock` are) changes
    /// nothing: blocks of 1, 2 and 3 rows against one block of all 7, with padding in the batch.
    @Test func queryBlocksGiveTheSameContext() throws {
        let model = try MegatronBERTModel(path: Fixtures.model("megatron-Model"))
        let batch = try Fixtures.batch()
        let x = try model.embeddings(ids: batch.inputIDs, types: try #require(batch.tokenTypeIDs), on: model.backend)
        let keep = try #require(batch.attentionMask).map { $0.map(Float.init) }
        let attention = model.layers[0].attention
        let whole = try #require(try attention.context(x, layout: .padded(batch: 3, sequence: 7, keep: keep), on: CPUBackend(queryBlock: 7)) as? Tensor)
        for block in [1, 2, 3] {
            let blocked = try #require(try attention.context(x, layout: .padded(batch: 3, sequence: 7, keep: keep), on: CPUBackend(queryBlock: block)) as? Tensor)
            var worst: Float = 0
            for i in 0..<whole.count { worst = max(worst, abs(whole[i] - blocked[i])) }
            #expect(worst <= 1e-6, "block \(block): \(worst)")
        }
    }
}
