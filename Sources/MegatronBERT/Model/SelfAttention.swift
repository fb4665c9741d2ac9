import COpenBLAS

/// `MegatronBertSelfAttention` + `MegatronBertSelfOutput` (the same tensors as BERT's):
/// `attention.self.{query,key,value}` and `attention.output.dense`.
struct SelfAttention: Sendable {
    let query: Linear  // (H, H)
    let key: Linear  // (H, H)
    let value: Linear  // (H, H)
    let output: Linear  // (H, H)
    let heads: Int
    /// Query rows per attention block: (128, 512) scores are 256 KB, inside a core's L2.
    static let queryBlock = 128

    init(_ loader: WeightLoader, _ prefix: String, config: BertConfig) throws {
        let h = config.hiddenSize
        query = try Linear(loader, prefix + ".self.query", in: h, out: h)
        key = try Linear(loader, prefix + ".self.key", in: h, out: h)
        value = try Linear(loader, prefix + ".self.value", in: h, out: h)
        output = try Linear(loader, prefix + ".output.dense", in: h, out: h)
        heads = config.numAttentionHeads
    }

    /// x (B·S, H) -> context (B·S, H), before the output projection.
    /// `keep[b]` (S) is 1 for the keys of row b that are real tokens (attention_mask == 1), else 0.
    func context(_ x: Tensor, batch b: Int, sequence s: Int, keep: [[Float]], queryBlock: Int = queryBlock) -> Tensor {
        let h = query.outFeatures, d = h / heads, n = b * s
        let q = query(x, rows: n), k = key(x, rows: n), v = value(x, rows: n)  // (B·S, H) each
        let context = Tensor(uninitializedShape: [n, h])
        let scale = 1 / Float(d).squareRoot()
        // Query rows go in blocks so a block's scores (block, S) stay in the core's cache through
        // the softmax and the product with V.
        let block = max(1, min(s, queryBlock))
        Parallel.forEach(b * heads) { pairs in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * s)  // (block, S)
            let inverseSums = UnsafeMutablePointer<Float>.allocate(capacity: block)  // (block)
            defer { scores.deallocate(); inverseSums.deallocate() }
            for pair in pairs {
                let i = pair / heads, head = pair % heads
                let offset = i * s * h + head * d  // row i·S, columns head·d ..< head·d + d
                var first = 0
                while first < s {
                    let rows = min(block, s - first)
                    let queries = offset + first * h
                    // scores = scale · Q_ih[first..<first+rows] K_ihᵀ   (rows, d) x (d, S)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(s), Int32(d),
                                scale, q.data + queries, Int32(h), k.data + offset, Int32(h), 0, scores, Int32(s))
                    keep[i].withUnsafeBufferPointer {
                        Kernels.softmaxNumerators(scores, rows: rows, width: s, keep: $0.baseAddress!, inverseSums: inverseSums)
                    }
                    // context rows = E V_ih   (rows, S) x (S, d), then each row divided by its softmax sum
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(d), Int32(s),
                                1, scores, Int32(s), v.data + offset, Int32(h), 0, context.data + queries, Int32(h))
                    for row in 0..<rows {
                        let out = context.data + queries + row * h
                        let factor = inverseSums[row]
                        for j in 0..<d { out[j] *= factor }
                    }
                    first += rows
                }
            }
        }
        return context
    }
}
