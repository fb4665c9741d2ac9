import Foundation
import Testing
import BERTTokenizer
import MegatronBERT
@testable import MegatronModel

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

    /// `forwardPackedPooled` pools on the backend what `forwardPacked` brings back whole: each sequence's rows summed
    /// (float64 sums, within 1e-5 of summing the downloaded rows), their maximum and their first row (exact); the
    /// executor's pooled rows are the same on the packed path and on the padded one (pooled on the host).
    @Test(arguments: [SegmentPooling.sum, .max, .first])
    func pooledPacksGiveThePooledRows(pooling: SegmentPooling) throws {
        let pipeline = try Pipeline(path: TaskFixtures.root + "/embedding")
        let model = pipeline.model, tokenizer = pipeline.tokenizer
        let encodings = try ["Paris is big .", "John", "the river is long and the city is old"].map { try tokenizer.encode($0) }
        let ids = encodings.map(\.ids), types = encodings.map(\.typeIDs)
        let whole = try model.forwardPacked(ids: ids, types: types)
        let pooled = try model.forwardPackedPooled(ids: ids, types: types, pooling: pooling)
        let h = model.config.hiddenSize
        #expect(pooled.pooledRows.shape == [ids.count, h])
        var worst = 0.0
        for (b, rows) in whole.segments.enumerated() {
            for k in 0..<h {
                let column = rows.map { Double(whole.lastHiddenState[$0 * h + k]) }
                let want = pooling == .sum ? column.reduce(0, +) : pooling == .max ? column.max()! : column[0]
                worst = max(worst, abs(Double(pooled.pooledRows[b * h + k]) - want))
            }
        }
        #expect(pooling == .sum ? worst <= 1e-5 : worst == 0, "\(pooling): \(worst)")
        #expect(pooled.poolerOutput?.count == whole.poolerOutput?.count)

        let rows = encodings.map { ModelRow($0) }
        let executor = SortedBatchExecutor(model: model, tokenizer: tokenizer, batchSize: 2)
        let packed = try executor.run(rows, work: .pooledEncoder(pooling))
        let padded = try executor.run(rows, work: .encoder).map { SortedBatchExecutor.pool(try #require($0.hidden), width: h, pooling) }
        for (a, b) in zip(packed, padded) {
            let mine = try #require(a.pooledRow)
            #expect(zip(mine, b).allSatisfy { abs($0 - $1) <= 1e-5 }, "\(pooling)")
            #expect(a.hidden == nil, "only the pooled rows come back")
        }
    }

    @Test func poolingSegmentsThatDoNotCoverTheRowsAreErrors() throws {
        let backend = CPUBackend()
        let x = Tensor(shape: [4, 2], values: [1, 2, 3, 4, 5, 6, 7, 8])
        for bad in [[0..<2], [0..<2, 3..<4], [0..<0, 0..<4], [1..<4]] {
            #expect(throws: BackendError.self) { try backend.poolSegments(x, segments: bad, .sum) }
        }
        let sums = try backend.download(try backend.poolSegments(x, segments: [0..<1, 1..<4], .sum))
        #expect(Array(UnsafeBufferPointer(start: sums.data, count: 4)) == [1, 2, 15, 18])
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
