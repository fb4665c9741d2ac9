import MegatronBackend

/// `MegatronBertLMPredictionHead` (`cls.predictions`): dense → act → LayerNorm → decoder tied to the
/// word embeddings, plus its own bias `cls.predictions.bias`.
struct MaskedLMHead: Sendable {
    let dense: Linear  // transform.dense (H, H)
    let activation: Activation
    let layerNorm: LayerNorm  // transform.LayerNorm
    let decoder: Linear  // (V, H): the word embeddings unless the config unties them
    let tiedDecoder: Bool

    init(_ loader: WeightLoader, _ prefix: String, config: BertConfig, wordEmbeddings: any PreparedMatrix) throws {
        let h = config.hiddenSize
        dense = try Linear(loader, prefix + ".transform.dense", in: h, out: h)
        activation = config.activation
        layerNorm = try LayerNorm(loader, prefix + ".transform.LayerNorm", width: h, epsilon: config.layerNormEps)
        let bias = try loader.vector(prefix + ".bias", config.vocabSize)
        // HF ties decoder.bias to cls.predictions.bias; a saved copy is the same tensor.
        loader.ignore(prefix + ".decoder.bias")
        tiedDecoder = config.tieWordEmbeddings
        if config.tieWordEmbeddings {
            loader.ignore(prefix + ".decoder.weight")
            decoder = Linear(weight: wordEmbeddings, bias: bias)
        } else {
            decoder = Linear(weight: try loader.matrix(prefix + ".decoder.weight", [config.vocabSize, h]), bias: bias)
        }
    }

    /// Its own parameters: the decoder weight only when it is not the (tied) word embedding.
    var parameterCount: Int {
        dense.parameterCount + layerNorm.parameterCount + (decoder.bias?.count ?? 0)
            + (tiedDecoder ? 0 : decoder.weight.shape.reduce(1, *))
    }

    /// hidden (N, H) -> logits (N, V)
    func callAsFunction(_ hidden: any DeviceTensor, on backend: any Backend) throws -> any DeviceTensor {
        let x = try dense(hidden, on: backend)
        try backend.activate(x, activation)
        try layerNorm.apply(x, on: backend)
        return try decoder(x, on: backend)
    }
}
