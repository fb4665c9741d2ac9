import MegatronBackend

/// `MegatronBertLayer` (pre-LayerNorm) or `BertLayer` (post-LayerNorm), as `config.architecture` says.
///
/// Megatron-BERT: `x = x + Attn(LN_a(x))`, then `x = x + W2·act(W1·LN_m(x))`;
/// LN_a is `attention.ln`, LN_m is `ln`.
/// BERT: `x = LN_a(x + Attn(x))`, then `x = LN_m(x + W2·act(W1·x))`;
/// LN_a is `attention.output.LayerNorm`, LN_m is `output.LayerNorm`.
struct EncoderLayer: Sendable {
    let preLayerNorm: Bool
    let attentionNorm: LayerNorm
    let attention: SelfAttention
    let mlpNorm: LayerNorm
    let intermediate: Linear  // intermediate.dense (F, H)
    let output: Linear  // output.dense (H, F)
    let activation: Activation

    init(_ loader: WeightLoader, _ prefix: String, config: BertConfig) throws {
        let h = config.hiddenSize, eps = config.layerNormEps
        preLayerNorm = config.architecture == .megatronBERT
        attention = try SelfAttention(loader, prefix + ".attention", config: config)
        attentionNorm = try LayerNorm(loader, prefix + (preLayerNorm ? ".attention.ln" : ".attention.output.LayerNorm"),
                                      width: h, epsilon: eps)
        mlpNorm = try LayerNorm(loader, prefix + (preLayerNorm ? ".ln" : ".output.LayerNorm"), width: h, epsilon: eps)
        intermediate = try Linear(loader, prefix + ".intermediate.dense", in: h, out: config.intermediateSize)
        output = try Linear(loader, prefix + ".output.dense", in: config.intermediateSize, out: h)
        activation = config.activation
    }

    var parameterCount: Int {
        [attention.qkv, attention.output, intermediate, output].map(\.parameterCount)
            .reduce(0, +) + attentionNorm.parameterCount + mlpNorm.parameterCount
    }

    /// x (rows, H) updated in place.
    func callAsFunction(_ x: any DeviceTensor, layout: SequenceLayout, on backend: any Backend) throws {
        if preLayerNorm {
            let normed = try attentionNorm(x, on: backend)  // (rows, H)
            let context = try attention.context(normed, layout: layout, on: backend)
            try attention.output.accumulate(context, into: x, on: backend)  // x += Wo·ctx + bo
            let normed2 = try mlpNorm(x, on: backend)
            let inner = try intermediate(normed2, activation: activation, on: backend)  // (rows, F)
            try output.accumulate(inner, into: x, on: backend)  // x += W2·act + b2
        } else {
            let context = try attention.context(x, layout: layout, on: backend)
            try attention.output.accumulate(context, into: x, on: backend)
            try attentionNorm.apply(x, on: backend)
            let inner = try intermediate(x, activation: activation, on: backend)
            try output.accumulate(inner, into: x, on: backend)
            try mlpNorm.apply(x, on: backend)
        }
    }
}
