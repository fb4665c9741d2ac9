import MegatronBackend

/// `MegatronBertEmbeddings` / `BertEmbeddings`: word + absolute position + token type embeddings;
/// plain BERT adds a LayerNorm (`embeddings.LayerNorm`), Megatron-BERT has none.
struct Embeddings: Sendable {
    let word: any PreparedMatrix  // (V, H)
    let position: any PreparedMatrix  // (P, H)
    let tokenType: any PreparedMatrix  // (T, H)
    let layerNorm: LayerNorm?

    /// - Parameter wordIsDecoder: the masked-LM decoder is tied to the word embeddings (so they are multiplied by too).
    init(_ loader: WeightLoader, _ prefix: String, config: BertConfig, wordIsDecoder: Bool) throws {
        let h = config.hiddenSize
        word = try loader.matrix(prefix + ".word_embeddings.weight", [config.vocabSize, h],
                                 use: wordIsDecoder ? .productAndGather : .gather)
        position = try loader.matrix(prefix + ".position_embeddings.weight", [config.maxPositionEmbeddings, h], use: .gather)
        tokenType = try loader.matrix(prefix + ".token_type_embeddings.weight", [config.typeVocabSize, h], use: .gather)
        layerNorm = config.architecture == .bert
            ? try LayerNorm(loader, prefix + ".LayerNorm", width: h, epsilon: config.layerNormEps) : nil
        loader.ignore(prefix + ".position_ids")  // a buffer older checkpoints saved
    }

    var parameterCount: Int {
        [word, position, tokenType].map { $0.shape.reduce(1, *) }.reduce(0, +) + (layerNorm?.parameterCount ?? 0)
    }

    /// ids, types (B, S) -> (B·S, H), positions 0..<S in every row. Inputs are already validated.
    func callAsFunction(ids: [[Int]], types: [[Int]], on backend: any Backend) throws -> any DeviceTensor {
        let x = try backend.embed(ids: ids, types: types, word: word, position: position, tokenType: tokenType)
        try layerNorm?.apply(x, on: backend)
        return x
    }
}
