/// `MegatronBertEmbeddings` / `BertEmbeddings`: word + absolute position + token type embeddings;
/// plain BERT adds a LayerNorm (`embeddings.LayerNorm`), Megatron-BERT has none.
struct Embeddings: Sendable {
    let word: Weight  // (V, H)
    let position: Weight  // (P, H)
    let tokenType: Weight  // (T, H)
    let layerNorm: LayerNorm?

    init(_ loader: WeightLoader, _ prefix: String, config: BertConfig) throws {
        let h = config.hiddenSize
        word = try loader.matrix(prefix + ".word_embeddings.weight", [config.vocabSize, h])
        position = try loader.matrix(prefix + ".position_embeddings.weight", [config.maxPositionEmbeddings, h])
        tokenType = try loader.matrix(prefix + ".token_type_embeddings.weight", [config.typeVocabSize, h])
        layerNorm = config.architecture == .bert
            ? try LayerNorm(loader, prefix + ".LayerNorm", width: h, epsilon: config.layerNormEps) : nil
        loader.ignore(prefix + ".position_ids")  // a buffer older checkpoints saved
    }

    var parameterCount: Int { word.count + position.count + tokenType.count + (layerNorm?.parameterCount ?? 0) }

    /// ids, types (B, S) -> (B·S, H), positions 0..<S in every row. Inputs are already validated.
    func callAsFunction(ids: [[Int]], types: [[Int]]) -> Tensor {
        let b = ids.count, s = ids[0].count, h = word.shape[1]
        let out = Tensor(uninitializedShape: [b * s, h])
        let row = UnsafeMutablePointer<Float>.allocate(capacity: h)
        defer { row.deallocate() }
        for i in 0..<b {
            for j in 0..<s {
                let o = out.data + (i * s + j) * h
                word.widen(from: ids[i][j] * h, count: h, into: o)
                position.widen(from: j * h, count: h, into: row)
                Kernels.add(row, into: o, count: h)
                tokenType.widen(from: types[i][j] * h, count: h, into: row)
                Kernels.add(row, into: o, count: h)
            }
        }
        layerNorm?.apply(out.data, rows: b * s, into: out.data)
        return out
    }
}
