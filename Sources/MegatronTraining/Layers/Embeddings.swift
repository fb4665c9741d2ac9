import MegatronBackend

/// `MegatronBertEmbeddings` / `BertEmbeddings` as a forward/backward pair: word + absolute position + token type.
/// Shapes: ids, types (B, S) → (B·S, H); word (V, H), position (P, H), type (T, H). (BERT's LayerNorm and the dropout
/// after the sum are separate layers, applied by the model.)
struct Embeddings {
    let word: Parameter  // (V, H)
    let position: Parameter  // (P, H)
    let tokenType: Parameter  // (T, H)
    /// The word row that never trains: transformers' `nn.Embedding(padding_idx=config.pad_token_id)`, 0 in both
    /// models' configs (and in the ones we write). Padding tokens' own gradients reach it only where padded positions
    /// feed the loss (question answering's softmax over every position).
    var paddingIndex = 0

    func forward(ids: [[Int]], types: [[Int]]) -> Tensor {
        let h = word.shape[1], s = ids.first?.count ?? 0
        let x = Tensor(uninitializedShape: [ids.count * s, h])
        for (b, row) in ids.enumerated() {
            for (t, id) in row.enumerated() {
                let out = x.data + (b * s + t) * h
                let w = word.value.data + id * h, p = position.value.data + t * h, k = tokenType.value.data + types[b][t] * h
                for j in 0..<h { out[j] = Float(Double(w[j]) + Double(p[j]) + Double(k[j])) }
            }
        }
        return x
    }

    /// dx (B·S, H) added into the rows the forward pass read: each token's word row, its position's row, its type's row
    /// (a row read twice gets both gradients; the masked-LM decoder tied to `word` adds its own elsewhere) — but the
    /// padding row, which stays as it is.
    func backward(_ dx: Tensor, ids: [[Int]], types: [[Int]]) {
        let h = word.shape[1], s = ids.first?.count ?? 0
        for (b, row) in ids.enumerated() {
            for (t, id) in row.enumerated() {
                let g = dx.data + (b * s + t) * h
                let w = word.gradient.data + id * h, p = position.gradient.data + t * h, k = tokenType.gradient.data + types[b][t] * h
                let trains = id != paddingIndex
                for j in 0..<h {
                    if trains { w[j] += g[j] }
                    p[j] += g[j]
                    k[j] += g[j]
                }
            }
        }
    }
}
