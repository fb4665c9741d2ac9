import Foundation
import TensorFiles

/// A Megatron-BERT (or BERT) encoder with the task head its checkpoint holds, ready to run on the CPU.
///
/// ```swift
/// let model = try MegatronBERTModel(path: "/models/megatron-bert-cased-345m", dtype: .fp32)
/// let outputs = try model.forward(Batch(inputIDs: [[101, 1109, 103, 102]]))
/// print(outputs["prediction_logits"]!.shape)  // [1, 4, 29056]
/// ```
public final class MegatronBERTModel: @unchecked Sendable {
    public let config: BertConfig
    public let head: ModelHead
    /// The precision the weights are kept in.
    public let dtype: DType

    let embeddings: Embeddings
    let layers: [EncoderLayer]
    /// `encoder.ln`: Megatron-BERT's final LayerNorm (nil for BERT).
    let finalNorm: LayerNorm?
    let pooler: Pooler?
    let maskedLM: MaskedLMHead?
    /// The linear head on the pooled or per-token output, with the HF output names it fills.
    let linearHead: Linear?

    /// Loads a Hugging Face model directory (or one weight file beside its config.json).
    public convenience init(path: String, dtype: DType = .fp32) throws {
        let checkpoint = try CheckpointDirectory(path: path)
        try self.init(config: checkpoint.config, tensors: checkpoint.tensors, dtype: dtype)
    }

    /// Builds the model from named tensors (Hugging Face names), strictly: every tensor the config and
    /// head need must be there with the right shape, and no other tensor may be.
    public convenience init(config: BertConfig, tensors: [String: StoredTensor], dtype: DType = .fp32) throws {
        try self.init(config: config, loader: WeightLoader(tensors: tensors, dtype: dtype))
    }

    /// A model of the config's shape and head (`architectures`) with random weights, for benchmarks.
    ///
    /// ```swift
    /// let model = try MegatronBERTModel(randomWeightsFor: .megatronBERT345M, dtype: .fp16)
    /// ```
    public convenience init(randomWeightsFor config: BertConfig, dtype: DType = .fp32, seed: UInt64 = 42) throws {
        let head = ModelHead(architectureName: config.architectures.first ?? "") ?? .base
        let prefix = head == .base ? "" : "bert."
        try self.init(config: config, loader: WeightLoader(randomWithSeed: seed, dtype: dtype, encoderPrefix: prefix))
    }

    init(config: BertConfig, loader: WeightLoader) throws {
        _ = Runtime.configured
        self.config = config
        self.dtype = loader.dtype
        let p = loader.encoderPrefix
        let unprefixed = Set(loader.names.filter { !$0.hasPrefix(p) || p.isEmpty })
        if let name = config.architectures.first {
            guard let head = ModelHead(architectureName: name) else {
                throw ModelError("architecture \(name) is not supported; supported: " + ModelHead.allCases.map { "MegatronBert\($0.rawValue)" }.joined(separator: ", "))
            }
            self.head = head
        } else {
            head = try ModelHead.infer(fromKeys: unprefixed)
        }
        if head != .base && p.isEmpty {
            throw ModelError("config.json says \(config.architectures.first ?? head.rawValue) but the tensors have no 'bert.' prefix; they look like a bare encoder (use architectures [\"MegatronBertModel\"])")
        }
        let h = config.hiddenSize
        embeddings = try Embeddings(loader, p + "embeddings", config: config)
        layers = try (0..<config.numHiddenLayers).map { try EncoderLayer(loader, p + "encoder.layer.\($0)", config: config) }
        finalNorm = config.architecture == .megatronBERT
            ? try LayerNorm(loader, p + "encoder.ln", width: h, epsilon: config.layerNormEps) : nil
        if head.needsPooler || (head == .base && loader.contains(p + "pooler.dense.weight")) {
            pooler = try Pooler(loader, p + "pooler", hidden: h)
        } else {
            pooler = nil
        }
        switch head {
        case .preTraining, .maskedLM:
            maskedLM = try MaskedLMHead(loader, "cls.predictions", config: config, wordEmbeddings: embeddings.word)
        default:
            maskedLM = nil
        }
        switch head {
        case .preTraining, .nextSentencePrediction:
            linearHead = try Linear(loader, "cls.seq_relationship", in: h, out: 2)
        case .sequenceClassification, .tokenClassification:
            linearHead = try Linear(loader, "classifier", in: h, out: config.numLabels)
        case .questionAnswering:
            linearHead = try Linear(loader, "qa_outputs", in: h, out: 2)
        case .multipleChoice:
            linearHead = try Linear(loader, "classifier", in: h, out: 1)
        case .base, .maskedLM:
            linearHead = nil
        }
        try loader.finish()
    }

    /// Runs the encoder and the head on a batch.
    ///
    /// Throws when the batch does not fit the model (ids outside the vocabulary, a sequence longer than
    /// `max_position_embeddings`, ragged rows, a multiple-choice model given a (B, S) batch …).
    public func forward(_ batch: Batch) throws -> ModelOutputs {
        try batch.validate(against: config)
        if head == .multipleChoice && batch.numChoices == nil {
            throw ModelError("a multiple-choice model takes input_ids shaped (batch, choices, sequence)")
        }
        let b = batch.inputIDs.count, s = batch.inputIDs[0].count, h = config.hiddenSize
        let types = batch.tokenTypeIDs ?? Array(repeating: Array(repeating: 0, count: s), count: b)
        let keep = (batch.attentionMask ?? Array(repeating: Array(repeating: 1, count: s), count: b)).map { $0.map { Float($0) } }

        let x = embeddings(ids: batch.inputIDs, types: types)  // (B·S, H)
        for layer in layers { layer(x, batch: b, sequence: s, keep: keep) }
        finalNorm?.apply(x.data, rows: b * s, into: x.data)

        let pooled = pooler?(x, batch: b, sequence: s)  // (B, H)
        var heads: [(name: String, tensor: Tensor)] = []
        switch head {
        case .base:
            break
        case .preTraining:
            heads.append(("prediction_logits", maskedLM!(x, rows: b * s).reshape([b, s, config.vocabSize])))
            heads.append(("seq_relationship_logits", linearHead!(pooled!, rows: b)))
        case .maskedLM:
            heads.append(("logits", maskedLM!(x, rows: b * s).reshape([b, s, config.vocabSize])))
        case .nextSentencePrediction, .sequenceClassification:
            heads.append(("logits", linearHead!(pooled!, rows: b)))
        case .tokenClassification:
            heads.append(("logits", linearHead!(x, rows: b * s).reshape([b, s, config.numLabels])))
        case .questionAnswering:
            let both = linearHead!(x, rows: b * s)  // (B·S, 2)
            let start = Tensor(shape: [b, s]), end = Tensor(shape: [b, s])
            for i in 0..<(b * s) {
                start[i] = both[2 * i]
                end[i] = both[2 * i + 1]
            }
            heads.append(("start_logits", start))
            heads.append(("end_logits", end))
        case .multipleChoice:
            let c = batch.numChoices!
            heads.append(("logits", linearHead!(pooled!, rows: b).reshape([b / c, c])))
        }
        return ModelOutputs(lastHiddenState: x.reshape([b, s, h]), poolerOutput: pooled, headOutputs: heads)
    }

    /// Parameters held in memory, and their bytes.
    public var parameterCount: Int {
        var n = embeddings.word.count + embeddings.position.count + embeddings.tokenType.count
        func linear(_ l: Linear) -> Int { l.weight.count + (l.bias?.count ?? 0) }
        func norm(_ l: LayerNorm?) -> Int { 2 * (l?.gamma.count ?? 0) }
        n += norm(embeddings.layerNorm) + norm(finalNorm)
        for layer in layers {
            n += linear(layer.attention.query) + linear(layer.attention.key) + linear(layer.attention.value)
            n += linear(layer.attention.output) + linear(layer.intermediate) + linear(layer.output)
            n += norm(layer.attentionNorm) + norm(layer.mlpNorm)
        }
        if let pooler { n += linear(pooler.dense) }
        if let maskedLM {
            n += linear(maskedLM.dense) + norm(maskedLM.layerNorm) + (maskedLM.decoder.bias?.count ?? 0)
            if !config.tieWordEmbeddings { n += maskedLM.decoder.weight.count }
        }
        if let linearHead { n += linear(linearHead) }
        return n
    }
}
