import Foundation
import MegatronBackend
import MegatronModel

/// A Megatron-BERT (pre-LayerNorm) or BERT (post-LayerNorm) encoder with a head — a sequence classifier
/// (`…ForSequenceClassification`: pooler, dropout, classifier), every token's (`…ForTokenClassification`: dropout,
/// classifier, no pooler), an answer span's (`…ForQuestionAnswering`: `qa_outputs`, each token's start and end
/// logit, no dropout), a choice scorer (`…ForMultipleChoice`: pooler, dropout, one score per sequence), or the
/// masked-LM and pre-training heads (`…ForMaskedLM`, `…ForPreTraining`: `cls.predictions` with the decoder tied to the
/// word embeddings, run on the labelled tokens only; next-sentence prediction from the pooler) — as forward/backward pairs, on FP32 master parameters under their Hugging Face names. One
/// `step` runs the forward pass, the loss and the backward pass, adding every parameter's gradient; the optimizer is
/// separate.
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
    /// What the encoder's output feeds.
    public let head: ModelHead
    let products: any MatrixProducts
    let embeddings: Embeddings
    let embeddingNorm: LayerNorm?  // BERT's embeddings.LayerNorm
    let layers: [TrainableLayer]
    let finalNorm: LayerNorm?  // Megatron's encoder.ln
    let pooler: Linear?  // (H, H), then tanh; sequence classification, multiple choice, pre-training
    let classifier: Linear?  // (labels, H); question answering's qa_outputs (2, H); none for the masked-LM heads
    let predictions: PredictionHead?  // cls.predictions: masked LM and pre-training
    let nextSentence: Linear?  // cls.seq_relationship (2, H): pre-training
    /// Dropout probabilities: after the embeddings and each block (hidden), on attention probabilities, before the
    /// classifier.
    public let dropout: DropoutRates

    /// Builds the model from named tensors (Hugging Face names; an encoder saved alone, without the `bert.` prefix,
    /// is read too), strictly: every tensor the encoder, the pooler (sequence classification) and the classifier need
    /// must be there with its shape;
    /// tensors of other heads (the pre-training heads) are left aside. With `newHead`, the classifier (and a pooler
    /// the checkpoint lacks) is drawn anew as transformers initialises it — normal(0, `initializer_range`) weights,
    /// zero biases — from `seed`, for `config.numLabels` labels.
    /// - Parameter dropout: the rates to train with (default: the config's); `.none` for evaluation and the checks.
    /// - Parameter head: what the classifier reads: the pooled [CLS] token (labels per sequence) or every token (labels
    ///   per token; for question answering, `qa_outputs`' start and end logits).
    public convenience init(config: BertConfig, tensors: [String: StoredTensor], products: any MatrixProducts,
                            head: ModelHead = .sequenceClassification, dropout: DropoutRates? = nil, newHead: Bool = false,
                            seed: UInt64 = 42) throws {
        try self.init(config: config, tensors: tensors, products: products, head: head, dropout: dropout, newHead: newHead,
                      seed: seed, randomWeights: false)
    }

    /// A classifier of `config`'s shape with every weight drawn as transformers initialises a new model (normal(0,
    /// `initializer_range`), LayerNorm weights 1, biases 0), for benchmarks.
    ///
    /// ```swift
    /// let model = try TrainableModel(randomWeightsFor: .megatronBERT345M, products: CPUMatrixProducts())
    /// ```
    public convenience init(randomWeightsFor config: BertConfig, products: any MatrixProducts,
                            head: ModelHead = .sequenceClassification, dropout: DropoutRates? = nil, seed: UInt64 = 42) throws {
        try self.init(config: config, tensors: [:], products: products, head: head, dropout: dropout, newHead: true, seed: seed,
                      randomWeights: true)
    }

    init(config: BertConfig, tensors: [String: StoredTensor], products: any MatrixProducts, head: ModelHead,
         dropout: DropoutRates?, newHead: Bool, seed: UInt64, randomWeights: Bool) throws {
        guard head != .base && head != .nextSentencePrediction else {
            throw TrainingError("training a \(head.rawValue) head is not supported: sequence and token classification, question answering, multiple choice, masked LM and pre-training are")
        }
        self.config = config
        self.head = head
        let headName = ["ForTokenClassification": "token-classification", "ForQuestionAnswering": "question-answering",
                        "ForMultipleChoice": "multiple-choice", "ForMaskedLM": "masked-LM", "ForPreTraining": "pre-training"][head.rawValue]
            ?? "sequence-classification"
        self.products = products
        var rates = dropout ?? DropoutRates(config)
        if head == .questionAnswering { rates.classifier = 0 }  // qa_outputs reads the encoder's output as it is
        self.dropout = rates
        var parameters: [String: Parameter] = [:]
        let prefixed = tensors["bert.embeddings.word_embeddings.weight"] != nil
        var random = SeededRandom(seed: seed)
        func take(_ name: String, _ shape: [Int], decays: Bool = true) throws -> Parameter {
            let head = Self.isHead(name)
            let stored = tensors[prefixed || !name.hasPrefix("bert.") ? name : String(name.dropFirst(5))]
            if randomWeights || newHead && head && (!name.hasPrefix("bert.pooler.") || stored == nil) {
                let count = shape.reduce(1, *)
                let values = name.hasSuffix(".bias") ? [Float](repeating: 0, count: count)
                    : !decays ? [Float](repeating: 1, count: count)  // a LayerNorm weight
                    : (0..<count).map { _ in Float(random.normal() * config.initializerRange) }
                let parameter = Parameter(name: name, shape: shape, values: values, decays: decays && !name.hasSuffix(".bias"))
                parameters[name] = parameter
                return parameter
            }
            guard let stored else {
                if head {
                    throw TrainingError("the checkpoint has no \(name): it has no \(headName) head\(name.hasPrefix("qa_outputs.") ? "" : " for these labels") (start one with --new-head)")
                }
                throw TrainingError("the checkpoint has no tensor \(name) (shape \(shape)), which a \(config.architecture.rawValue) \(headName) model needs")
            }
            guard stored.shape == shape else {
                if name.hasPrefix("classifier.") {
                    throw TrainingError("the checkpoint's classifier has \(stored.shape[0]) labels, and these data have \(shape[0]): replace it with --new-head")
                }
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
                attention: Attention(heads: config.numAttentionHeads, dropout: Dropout(probability: self.dropout.attention)),
                attentionOutput: try linear(p + ".attention.output.dense", out: h, in: h),
                attentionNorm: try norm(p + (megatron ? ".attention.ln" : ".attention.output.LayerNorm")),
                intermediate: try linear(p + ".intermediate.dense", out: f, in: h), output: try linear(p + ".output.dense", out: h, in: f),
                mlpNorm: try norm(p + (megatron ? ".ln" : ".output.LayerNorm")), activation: activation,
                hiddenDropout: Dropout(probability: self.dropout.hidden)))
        }
        self.layers = layers
        finalNorm = megatron ? try norm("bert.encoder.ln") : nil
        let pooled = head == .sequenceClassification || head == .multipleChoice || head == .preTraining
        pooler = pooled ? try linear("bert.pooler.dense", out: h, in: h) : nil
        switch head {
        case .questionAnswering: classifier = try linear("qa_outputs", out: 2, in: h)
        case .multipleChoice: classifier = try linear("classifier", out: 1, in: h)  // a score per choice
        case .maskedLM, .preTraining: classifier = nil
        default: classifier = try linear("classifier", out: config.numLabels, in: h)
        }
        if head == .maskedLM || head == .preTraining {
            // The decoder is the word embeddings (tied, as both models' configs say) with the head's own bias.
            let decoderWeight = config.tieWordEmbeddings ? embeddings.word : try take("cls.predictions.decoder.weight", [config.vocabSize, h])
            predictions = PredictionHead(dense: try linear("cls.predictions.transform.dense", out: h, in: h), activation: activation,
                                         norm: try norm("cls.predictions.transform.LayerNorm"),
                                         decoder: Linear(weight: decoderWeight, bias: try take("cls.predictions.bias", [config.vocabSize])))
        } else {
            predictions = nil
        }
        nextSentence = head == .preTraining ? try linear("cls.seq_relationship", out: 2, in: h) : nil
        self.parameters = parameters
    }

    /// How many of the top encoder layers are trained (nil: all, and the embeddings). The last `trainedLayers`
    /// layers, the final LayerNorm (Megatron's `encoder.ln`), the pooler and the classifier are trained; the
    /// embeddings and the layers below are frozen, and the backward pass stops above them. 0 trains the head (pooler
    /// and classifier, or the classifier alone for tokens) only.
    public var trainedLayers: Int? {
        didSet { trainedLayers = trainedLayers.map { min(max($0, 0), layers.count) } }
    }

    /// Pre-training: whether the next-sentence head (the pooler and `cls.seq_relationship`) trains; off, it keeps its
    /// weights and stays out of the optimizer (masked-LM training alone, as transformers leaves parameters without a
    /// gradient).
    public var trainsNextSentence = true

    /// Every parameter, in name order.
    public var parameterList: [Parameter] { parameters.keys.sorted().compactMap { parameters[$0] } }

    /// The parameters that train (all, unless `trainedLayers` freezes some), in name order: what the optimizer and
    /// the clipping walk.
    public var trainableParameters: [Parameter] { parameterList.filter { isTrained($0.name) } }

    /// Whether the parameter `name` trains under `trainedLayers`.
    public func isTrained(_ name: String) -> Bool {
        if !trainsNextSentence && head == .preTraining && (name.hasPrefix("bert.pooler.") || name.hasPrefix("cls.seq_relationship.")) {
            return false
        }
        guard let trained = trainedLayers, trained < layers.count else { return true }
        if Self.isHead(name) { return true }
        if name.hasPrefix("bert.encoder.ln.") { return trained > 0 }
        let prefix = "bert.encoder.layer."
        guard name.hasPrefix(prefix), let index = Int(name.dropFirst(prefix.count).prefix { $0 != "." }) else { return false }
        return index >= layers.count - trained
    }

    /// Whether `name` belongs to the head: the classifier (or `qa_outputs`, or `cls.…`) and the pooler.
    static func isHead(_ name: String) -> Bool {
        name.hasPrefix("classifier.") || name.hasPrefix("qa_outputs.") || name.hasPrefix("cls.") || name.hasPrefix("bert.pooler.")
    }

    /// Sets every gradient to zero.
    public func zeroGradients() { parameters.values.forEach { $0.zeroGradient() } }

    /// What the backward pass has of a layer: everything its forward pass saved, or (recomputing) only its input and
    /// the generator's state before it, to run the forward pass again — the same dropout masks, the same bits.
    enum LayerRecord {
        case saved(TrainableLayer.Saved)
        case recompute(input: Tensor, random: SeededRandom)
    }

    /// Activation recomputation (gradient checkpointing): keep only each layer's input through the forward pass and
    /// run the layer's forward pass again in the backward pass. Memory for activations falls from every layer's to
    /// one layer's plus the inputs, for about a third more time; the gradients are the same bits.
    public var recomputeActivations = false

    /// What a forward pass keeps for its backward pass.
    struct ForwardState {
        var batch: Int, sequence: Int
        var ids: [[Int]], types: [[Int]]
        var embeddingNorm: (input: Tensor, saved: LayerNorm.Saved)?
        var embeddingMask: DropoutMask?
        var layers: [LayerRecord]
        var keep: [[Float]]
        var encoded: Tensor  // the last layer's output (B·S, H), or its [CLS] rows (B, H), before the final LayerNorm
        var finalNorm: LayerNorm.Saved?
        var pooler: (input: Tensor, preActivation: Tensor)?  // the [CLS] rows (B, H) and the product before tanh
        var classifierMask: DropoutMask?
        var dropped: Tensor  // the classifier's input (pre-training: seq_relationship's, the pooled output)
        var positions: [Int]?  // masked LM: the rows (of B·S) the prediction head ran on
        var predictions: PredictionHead.Saved?
        var nextSentenceLogits: Tensor?  // pre-training: (B, 2)
    }

    /// The logits of one batch — (B, labels), or (B·S, labels) for tokens —: ids, types and mask (B, S). With
    /// `training`, dropout at the model's rates (masks drawn from `random`), else none.
    /// For the masked-LM heads, `positions` (flat indices into B·S) are the tokens whose vocabulary logits are
    /// computed: (positions, V).
    public func logits(ids: [[Int]], types: [[Int]], mask: [[Int]], positions: [Int]? = nil, training: Bool = false,
                       random: inout SeededRandom) throws -> Tensor {
        try forward(ids: ids, types: types, mask: mask, positions: positions, training: training, random: &random).logits
    }

    /// Forward, loss and backward on one batch: ids, types and mask (B, S); targets as `Loss.evaluate` takes them (for
    /// tokens, a class or -100 per token, B·S).
    /// Adds each parameter's gradient of `lossScale` × the loss (a mean over the batch) to `gradient`: with gradient
    /// accumulation over n batches, `lossScale` 1/n (as the HF Trainer divides the loss). Dropout at the model's rates.
    /// - Returns: the loss (unscaled) and the logits (B, labels) or (B·S, labels).
    public func step(ids: [[Int]], types: [[Int]], mask: [[Int]], targets: [Double], loss: Loss, lossScale: Double = 1,
                     random: inout SeededRandom) throws -> (loss: Double, logits: Tensor) {
        try step(ids: ids, types: types, mask: mask, lossScale: lossScale, random: &random) { try loss.evaluate($0, targets: targets) }
    }

    /// `step` with any loss: `objective` takes the logits and gives the loss and ∂loss/∂logits (question answering:
    /// `SpanLoss.evaluate` with the start and end positions).
    ///
    /// ```swift
    /// let (loss, _) = try model.step(ids: ids, types: types, mask: mask, random: &random) {
    ///     try SpanLoss.evaluate($0, starts: [5], ends: [7])
    /// }
    /// ```
    public func step(ids: [[Int]], types: [[Int]], mask: [[Int]], positions: [Int]? = nil, lossScale: Double = 1,
                     random: inout SeededRandom, objective: (Tensor) throws -> (loss: Double, gradient: Tensor)) throws -> (loss: Double, logits: Tensor) {
        try step(ids: ids, types: types, mask: mask, positions: positions, lossScale: lossScale, random: &random) { logits, _ in
            let (loss, gradient) = try objective(logits)
            return (loss, gradient, nil)
        }
    }

    /// `step` for the pre-training head: `objective` takes the masked-LM logits (positions, V) and the next-sentence
    /// logits (B, 2) and gives the loss and the gradient of each.
    public func step(ids: [[Int]], types: [[Int]], mask: [[Int]], positions: [Int]?, lossScale: Double = 1, random: inout SeededRandom,
                     objective: (Tensor, Tensor?) throws -> (loss: Double, gradient: Tensor, nextSentence: Tensor?)) throws -> (loss: Double, logits: Tensor) {
        let (logits, state) = try forward(ids: ids, types: types, mask: mask, positions: positions, training: true, random: &random)
        let (value, dLogits, dNextSentence) = try objective(logits, state.nextSentenceLogits)
        for gradient in [dLogits] + (dNextSentence.map { [$0] } ?? []) where lossScale != 1 {
            for i in 0..<gradient.count { gradient.data[i] *= Float(lossScale) }
        }
        backward(dLogits, state, nextSentence: dNextSentence)
        return (value, logits)
    }

    func forward(ids: [[Int]], types: [[Int]], mask: [[Int]], positions: [Int]? = nil, training: Bool,
                 random: inout SeededRandom) throws -> (logits: Tensor, state: ForwardState) {
        let b = ids.count, s = ids.first?.count ?? 0, h = config.hiddenSize
        guard b > 0, s > 0, ids.allSatisfy({ $0.count == s }), types.count == b, mask.count == b,
              zip(types, mask).allSatisfy({ $0.count == s && $1.count == s }) else {
            throw TrainingError("a batch needs ids, token types and an attention mask of one shape (B, S), B and S at least 1")
        }
        guard s <= config.maxPositionEmbeddings else {
            throw TrainingError("a sequence of \(s) tokens is longer than the model's max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        for row in ids where row.contains(where: { !(0..<config.vocabSize).contains($0) }) {
            throw TrainingError("a token id is outside the vocabulary (0..<\(config.vocabSize)): does the tokenizer belong to this model?")
        }
        let rates = training ? dropout : .none
        // Each step frees a pass's activations and asks for the same shapes again: let the pool keep about a pass's
        // worth (every layer's activations and attention probabilities) rather than take fresh zeroed pages from the
        // system every step.
        let heads = config.numAttentionHeads, f = config.intermediateSize
        BufferPool.shared.reserve(atLeast: layers.count * (b * s * (12 * h + 3 * f) + 3 * b * heads * s * s) * 4)
        let keep = mask.map { $0.map { Float($0) } }
        // (B·S, H) through the layers, the pooled [CLS] (B, H), the logits (B, labels).
        var x = embeddings.forward(ids: ids, types: types)
        var embeddingNormSaved: (input: Tensor, saved: LayerNorm.Saved)?
        if let embeddingNorm {
            let (normed, saved) = embeddingNorm.forward(x)
            embeddingNormSaved = (x, saved)
            x = normed
        }
        let embeddingMask = Dropout(probability: rates.hidden).mask(count: x.count, &random)
        Dropout.apply(embeddingMask, to: x)
        var saved: [LayerRecord] = []
        for (index, layer) in (training ? layers : layers.map({ $0.withoutDropout })).enumerated() {
            let start = random
            // The last layer of a sequence classifier: the pooler reads only the [CLS] rows, so only they are computed past
            // the keys and values.
            let (y, layerSaved) = layer.forward(x, batch: b, sequence: s, keep: keep, firstOnly: firstOnly(layer: index),
                                                &random, products)
            saved.append(recomputeActivations && training ? .recompute(input: x, random: start) : .saved(layerSaved))
            x = y
        }
        let encoded = x  // (B, H), or (B·S, H) for tokens
        var finalSaved: LayerNorm.Saved?
        if let finalNorm {
            let (normed, normSaved) = finalNorm.forward(x)
            finalSaved = normSaved
            x = normed
        }
        var state = ForwardState(batch: b, sequence: s, ids: ids, types: types, embeddingNorm: embeddingNormSaved,
                                 embeddingMask: embeddingMask, layers: saved, keep: keep, encoded: encoded, finalNorm: finalSaved,
                                 pooler: nil, classifierMask: nil, dropped: x)
        if let predictions {
            // (M, H) rows at the labelled positions → (M, V); pre-training also (B, 2) from the pooled [CLS] rows.
            guard let positions, positions.allSatisfy({ (0..<(b * s)).contains($0) }) else {
                throw TrainingError("a masked-LM step needs the positions (0..<B·S) of the tokens it predicts")
            }
            let (logits, predictionsSaved) = predictions.forward(PredictionHead.gather(x, rows: positions), products)
            (state.positions, state.predictions) = (positions, predictionsSaved)
            if let pooler, let nextSentence {
                let first = PredictionHead.gather(x, rows: (0..<b).map { $0 * s }), preActivation = pooler.forward(first, products)
                state.pooler = (first, preActivation)
                state.dropped = Activations.forward(preActivation, .tanh)
                state.nextSentenceLogits = nextSentence.forward(state.dropped, products)
            }
            return (logits, state)
        }
        if let pooler {
            let preActivation = pooler.forward(x, products)
            state.pooler = (x, preActivation)
            state.dropped = Activations.forward(preActivation, .tanh)  // (B, H)
        } else if rates.classifier > 0 {
            state.dropped = TrainableLayer.copy(x)  // dropout works in place; x stays as it was
        }
        let classifierMask = Dropout(probability: rates.classifier).mask(count: state.dropped.count, &random)
        Dropout.apply(classifierMask, to: state.dropped)
        state.classifierMask = classifierMask
        return (classifier!.forward(state.dropped, products), state)
    }

    /// Whether layer `index` computes only the [CLS] rows past its keys and values: the last, when only the pooler
    /// reads it.
    func firstOnly(layer index: Int) -> Bool { pooler != nil && predictions == nil && index == layers.count - 1 }

    /// dLogits (B, labels), (B·S, labels) for tokens, or (positions, V) for the masked-LM heads (with the
    /// next-sentence logits' gradient (B, 2) for pre-training) back through the head, the layers and the embeddings,
    /// every gradient added to.
    func backward(_ dLogits: Tensor, _ state: ForwardState, nextSentence dNextSentence: Tensor? = nil) {
        let b = state.batch, s = state.sequence
        var dx: Tensor  // (B·S, H) for tokens and the masked-LM heads; (B, H) through the pooler, then (B·S, H) below the last layer
        if let predictions, let saved = state.predictions, let positions = state.positions {
            dx = PredictionHead.scatter(predictions.backward(dLogits, saved: saved, products), rows: positions, count: b * s)
            if let pooler, let nextSentence, let dNextSentence, let (first, preActivation) = state.pooler {
                let dPooled = nextSentence.backward(dNextSentence, input: state.dropped, products)
                let dFirst = pooler.backward(Activations.backward(dPooled, input: preActivation, .tanh), input: first, products)
                let h = config.hiddenSize
                for row in 0..<b {
                    let to = dx.data + row * s * h, from = dFirst.data + row * h
                    for j in 0..<h { to[j] += from[j] }
                }
            }
        } else {
            let dDropped = classifier!.backward(dLogits, input: state.dropped, products)
            Dropout.apply(state.classifierMask, to: dDropped)
            dx = dDropped
            if let pooler, let (input, preActivation) = state.pooler {
                dx = pooler.backward(Activations.backward(dDropped, input: preActivation, .tanh), input: input, products)
            }
        }
        let trained = trainedLayers ?? layers.count
        guard trained > 0 else { return }  // the head only
        if let finalNorm, let finalSaved = state.finalNorm { dx = finalNorm.backward(dx, input: state.encoded, saved: finalSaved) }
        for (index, (layer, record)) in zip(layers, state.layers).enumerated().reversed() where index >= layers.count - trained {
            switch record {
            case .saved(let layerSaved):
                dx = layer.backward(dx, saved: layerSaved, batch: b, sequence: s, products)
            case .recompute(let input, var random):
                let (_, layerSaved) = layer.forward(input, batch: b, sequence: s, keep: state.keep, firstOnly: firstOnly(layer: index),
                                                    &random, products)
                dx = layer.backward(dx, saved: layerSaved, batch: b, sequence: s, products)
            }
        }
        guard trained == layers.count else { return }  // the embeddings frozen
        Dropout.apply(state.embeddingMask, to: dx)
        if let embeddingNorm, let embeddingNormSaved = state.embeddingNorm {
            dx = embeddingNorm.backward(dx, input: embeddingNormSaved.input, saved: embeddingNormSaved.saved)
        }
        embeddings.backward(dx, ids: state.ids, types: state.types)
    }
}

/// The dropout probabilities of training: after the embeddings and each block, on the attention probabilities, and
/// before the classifier, as transformers takes them from the config (BERT's `classifier_dropout` when set, else the
/// hidden one; Megatron-BERT's classifier always the hidden one).
public struct DropoutRates: Sendable, Equatable {
    public var hidden: Double
    public var attention: Double
    public var classifier: Double

    public init(hidden: Double, attention: Double, classifier: Double) {
        self.hidden = hidden
        self.attention = attention
        self.classifier = classifier
    }

    public init(_ config: BertConfig) {
        hidden = config.hiddenDropoutProb
        attention = config.attentionProbsDropoutProb
        classifier = config.architecture == .bert ? config.classifierDropout ?? config.hiddenDropoutProb : config.hiddenDropoutProb
    }

    /// No dropout: evaluation, and the gradient checks.
    public static let none = DropoutRates(hidden: 0, attention: 0, classifier: 0)
}
