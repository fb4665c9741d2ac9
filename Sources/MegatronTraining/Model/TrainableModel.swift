import MegatronBackend
import MegatronModel

/// A Megatron-BERT (pre-LayerNorm) or BERT (post-LayerNorm) encoder with a sequence-classification head
/// (`…ForSequenceClassification`: pooler, dropout, classifier) as forward/backward pairs, on FP32 master parameters
/// under their Hugging Face names. One `step` runs the forward pass, the loss and the backward pass, adding every
/// parameter's gradient; the optimizer is separate.
///
/// ```swift
/// let source = try ModelSource.open("/models/my-classifier")
/// let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts())
/// var random = SeededRandom(seed: 42)
/// let (loss, logits) = try model.step(ids: [[2, 7, 3]], types: [[0, 0, 0]], mask: [[1, 1, 1]], targets: [1],
///                                      loss: .crossEntropy, random: &random)
/// ```
public final class TrainableModel: @unchecked Sendable {
    public let config: BertConfig
    /// Every parameter, by Hugging Face name.
    public let parameters: [String: Parameter]
    let products: any MatrixProducts
    let embeddings: Embeddings
    let embeddingNorm: LayerNorm?  // BERT's embeddings.LayerNorm
    let layers: [TrainableLayer]
    let finalNorm: LayerNorm?  // Megatron's encoder.ln
    let pooler: Linear  // (H, H), then tanh
    let classifier: Linear  // (labels, H)
    /// Dropout probabilities: after the embeddings and each block (hidden), on attention probabilities, before the
    /// classifier. All 0 unless set (evaluation, and the gradient checks).
    public let dropout: (hidden: Double, attention: Double, classifier: Double)

    /// Builds the model from named tensors (Hugging Face names), strictly: every tensor the encoder, pooler and
    /// classifier need must be there with its shape; tensors of other heads (the pre-training heads) are left aside.
    public init(config: BertConfig, tensors: [String: StoredTensor], products: any MatrixProducts,
                dropout: (hidden: Double, attention: Double, classifier: Double) = (0, 0, 0)) throws {
        self.config = config
        self.products = products
        self.dropout = dropout
        var parameters: [String: Parameter] = [:]
        func take(_ name: String, _ shape: [Int], decays: Bool = true) throws -> Parameter {
            guard let stored = tensors[name] else {
                throw TrainingError("the checkpoint has no tensor \(name) (shape \(shape)), which a \(config.architecture.rawValue) sequence classifier needs")
            }
            guard stored.shape == shape else {
                throw TrainingError("\(name) has shape \(stored.shape) in the checkpoint; this config needs \(shape)")
            }
            let parameter = Parameter(name: name, shape: shape, values: stored.toFloats(), decays: decays && !name.hasSuffix(".bias"))
            parameters[name] = parameter
            return parameter
        }
        let h = config.hiddenSize, f = config.intermediateSize, eps = config.layerNormEps
        let megatron = config.architecture == .megatronBERT
        func linear(_ prefix: String, out: Int, in inputs: Int) throws -> Linear {
            Linear(weight: try take(prefix + ".weight", [out, inputs]), bias: try take(prefix + ".bias", [out]))
        }
        func norm(_ prefix: String) throws -> LayerNorm {
            LayerNorm(gamma: try take(prefix + ".weight", [h], decays: false), beta: try take(prefix + ".bias", [h]), epsilon: eps)
        }
        embeddings = Embeddings(word: try take("bert.embeddings.word_embeddings.weight", [config.vocabSize, h]),
                                position: try take("bert.embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, h]),
                                tokenType: try take("bert.embeddings.token_type_embeddings.weight", [config.typeVocabSize, h]))
        embeddingNorm = megatron ? nil : try norm("bert.embeddings.LayerNorm")
        guard let activation = Activation(configName: config.hiddenAct) else {
            throw TrainingError("hidden_act \(config.hiddenAct) has no backward pass here")
        }
        var layers: [TrainableLayer] = []
        for i in 0..<config.numHiddenLayers {
            let p = "bert.encoder.layer.\(i)"
            layers.append(TrainableLayer(
                preLayerNorm: megatron,
                query: try linear(p + ".attention.self.query", out: h, in: h), key: try linear(p + ".attention.self.key", out: h, in: h),
                value: try linear(p + ".attention.self.value", out: h, in: h),
                attention: Attention(heads: config.numAttentionHeads, dropout: Dropout(probability: dropout.attention)),
                attentionOutput: try linear(p + ".attention.output.dense", out: h, in: h),
                attentionNorm: try norm(p + (megatron ? ".attention.ln" : ".attention.output.LayerNorm")),
                intermediate: try linear(p + ".intermediate.dense", out: f, in: h), output: try linear(p + ".output.dense", out: h, in: f),
                mlpNorm: try norm(p + (megatron ? ".ln" : ".output.LayerNorm")), activation: activation,
                hiddenDropout: Dropout(probability: dropout.hidden)))
        }
        self.layers = layers
        finalNorm = megatron ? try norm("bert.encoder.ln") : nil
        pooler = try linear("bert.pooler.dense", out: h, in: h)
        classifier = try linear("classifier", out: config.numLabels, in: h)
        self.parameters = parameters
    }

    /// Every parameter, in name order (what the optimizer and the clipping walk).
    public var parameterList: [Parameter] { parameters.keys.sorted().compactMap { parameters[$0] } }

    /// Sets every gradient to zero.
    public func zeroGradients() { parameters.values.forEach { $0.zeroGradient() } }

    /// Forward, loss and backward on one batch: ids, types and mask (B, S); targets as `Loss.evaluate` takes them.
    /// Adds each parameter's gradient of `lossScale` × the loss (a mean over the batch) to `gradient`: with gradient
    /// accumulation over n batches, `lossScale` 1/n (as the HF Trainer divides the loss).
    /// - Returns: the loss (unscaled) and the logits (B, labels).
    public func step(ids: [[Int]], types: [[Int]], mask: [[Int]], targets: [Double], loss: Loss, lossScale: Double = 1,
                     random: inout SeededRandom) throws -> (loss: Double, logits: Tensor) {
        let b = ids.count, s = ids.first?.count ?? 0, h = config.hiddenSize
        guard b > 0, s > 0, ids.allSatisfy({ $0.count == s }), types.count == b, mask.count == b,
              zip(types, mask).allSatisfy({ $0.count == s && $1.count == s }) else {
            throw TrainingError("a batch needs ids, token types and an attention mask of one shape (B, S), B and S at least 1")
        }
        let keep = mask.map { $0.map { Float($0) } }
        // Forward: (B·S, H) through the layers, the pooled [CLS] (B, H), the logits (B, labels).
        var x = embeddings.forward(ids: ids, types: types)
        var embeddingNormSaved: (input: Tensor, saved: LayerNorm.Saved)?
        if let embeddingNorm {
            let (normed, saved) = embeddingNorm.forward(x)
            embeddingNormSaved = (x, saved)
            x = normed
        }
        let embeddingMask = Dropout(probability: dropout.hidden).mask(count: x.count, &random)
        Dropout.apply(embeddingMask, to: x)
        var saved: [TrainableLayer.Saved] = []
        for layer in layers {
            let (y, layerSaved) = layer.forward(x, batch: b, sequence: s, keep: keep, &random, products)
            saved.append(layerSaved)
            x = y
        }
        let encoded = x
        var finalSaved: LayerNorm.Saved?
        if let finalNorm {
            let (normed, normSaved) = finalNorm.forward(x)
            finalSaved = normSaved
            x = normed
        }
        let first = Tensor(shape: [b, h])  // the [CLS] rows
        for row in 0..<b { (first.data + row * h).update(from: x.data + row * s * h, count: h) }
        let poolerInput = pooler.forward(first, products)
        let pooled = Activations.forward(poolerInput, .tanh)
        let classifierMask = Dropout(probability: dropout.classifier).mask(count: pooled.count, &random)
        let dropped = Tensor(shape: pooled.shape, values: pooled.toArray())
        Dropout.apply(classifierMask, to: dropped)
        let logits = classifier.forward(dropped, products)
        let (value, dLogits) = try loss.evaluate(logits, targets: targets)
        if lossScale != 1 { for i in 0..<dLogits.count { dLogits.data[i] *= Float(lossScale) } }

        // Backward, in the reverse order.
        let dDropped = classifier.backward(dLogits, input: dropped, products)
        Dropout.apply(classifierMask, to: dDropped)
        let dPoolerInput = Activations.backward(dDropped, input: poolerInput, .tanh)
        let dFirst = pooler.backward(dPoolerInput, input: first, products)
        var dx = Tensor(shape: [b * s, h])
        for row in 0..<b { (dx.data + row * s * h).update(from: dFirst.data + row * h, count: h) }
        if let finalNorm, let finalSaved { dx = finalNorm.backward(dx, input: encoded, saved: finalSaved) }
        for (layer, layerSaved) in zip(layers, saved).reversed() {
            dx = layer.backward(dx, saved: layerSaved, batch: b, sequence: s, products)
        }
        Dropout.apply(embeddingMask, to: dx)
        if let embeddingNorm, let embeddingNormSaved {
            dx = embeddingNorm.backward(dx, input: embeddingNormSaved.input, saved: embeddingNormSaved.saved)
        }
        embeddings.backward(dx, ids: ids, types: types)
        return (value, logits)
    }
}
