import Foundation
import MegatronBackend
import TensorFiles

/// A Megatron-BERT (or BERT) encoder with the task head its checkpoint holds, ready to run on a backend (the CPU
/// unless told otherwise). The layer flow and every head are written once against `Backend`.
///
/// ```swift
/// let model = try MegatronBERTModel(path: "/models/megatron-bert-cased-345m", dtype: .fp32)
/// let outputs = try model.forward(Batch(inputIDs: [[101, 1109, 103, 102]]))
/// print(outputs.head?.maskedLMLogits?.shape ?? [])  // [1, 4, 29056]
/// ```
public final class MegatronBERTModel: @unchecked Sendable {
    /// The model's shape and settings (config.json).
    public let config: BertConfig
    /// Which head it has (from `architectures`, or the tensor names).
    public let head: ModelHead
    /// The precision the weights are kept in.
    public let dtype: DType
    /// Where the math runs.
    public let backend: any Backend

    let embeddings: Embeddings
    let layers: [EncoderLayer]
    /// `encoder.ln`: Megatron-BERT's final LayerNorm (nil for BERT).
    let finalNorm: LayerNorm?
    let pooler: Pooler?
    let taskHead: TaskHead

    /// Loads any model path `ModelSource.open` takes: a Hugging Face model directory (or one weight file beside its
    /// config.json), or a Megatron-LM checkpoint (`.pt`, NVIDIA's NGC `.zip`, a checkpoint directory).
    public convenience init(path: String, dtype: DType = .fp32, backend: any Backend) throws {
        try self.init(source: ModelSource.open(path), dtype: dtype, backend: backend)
    }

    /// Builds the model from an opened source.
    public convenience init(source: ModelSource, dtype: DType = .fp32, backend: any Backend) throws {
        try self.init(config: source.config, tensors: source.tensors, dtype: dtype, backend: backend)
    }

    /// Builds the model from named tensors (Hugging Face names), strictly: every tensor the config and
    /// head need must be there with the right shape, and no other tensor may be.
    public convenience init(config: BertConfig, tensors: [String: StoredTensor], dtype: DType = .fp32,
                            backend: any Backend) throws {
        try self.init(config: config, loader: WeightLoader(tensors: tensors, dtype: dtype, backend: backend))
    }

    /// A model of the config's shape and head (`architectures`) with random weights, for benchmarks.
    ///
    /// ```swift
    /// let model = try MegatronBERTModel(randomWeightsFor: .megatronBERT345M, dtype: .fp16)
    /// ```
    public convenience init(randomWeightsFor config: BertConfig, dtype: DType = .fp32, seed: UInt64 = 42,
                            backend: any Backend) throws {
        let head = ModelHead(architectureName: config.architectures.first ?? "") ?? .base
        let prefix = head == .base ? "" : "bert."
        try self.init(config: config, loader: WeightLoader(randomWithSeed: seed, dtype: dtype, encoderPrefix: prefix,
                                                           backend: backend))
    }

    init(config: BertConfig, loader: WeightLoader) throws {
        // The backend's own answer, as the error it would give when asked to prepare the first weight.
        if let why = loader.backend.unsupportedReason(for: loader.dtype) { throw BackendError(why) }
        self.config = config
        self.dtype = loader.dtype
        self.backend = loader.backend
        let p = loader.encoderPrefix
        let unprefixed = Set(loader.names.filter { !$0.hasPrefix(p) || p.isEmpty })
        if let name = config.architectures.first {
            guard let head = ModelHead(architectureName: name) else {
                throw ModelError(.unsupported, "architecture \(name) is not supported; supported: " + ModelHead.allCases.map { "MegatronBert\($0.rawValue)" }.joined(separator: ", "))
            }
            self.head = head
        } else {
            head = try ModelHead.infer(fromKeys: unprefixed)
        }
        if head != .base && p.isEmpty {
            throw ModelError("config.json says \(config.architectures.first ?? head.rawValue) but the tensors have no 'bert.' prefix; they look like a bare encoder (use architectures [\"MegatronBertModel\"])")
        }
        let h = config.hiddenSize
        if loader.isRandom {
            guard let bytes = config.weightBytes(dtype: loader.dtype), bytes <= MemoryBudget.bytes else {
                throw ModelError(.resource, "a model of this config would take \(config.weightBytes(dtype: loader.dtype).map(MemoryBudget.describe) ?? "more memory than can be counted"), more than this machine's \(MemoryBudget.describe(MemoryBudget.bytes))")
            }
        } else {
            // The config's layer count against the checkpoint's, before anything is built for either.
            let prefix = p + "encoder.layer."
            let present = Set(loader.names.compactMap { name -> Int? in
                guard name.hasPrefix(prefix) else { return nil }
                return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
            })
            guard config.numHiddenLayers <= present.count else {
                throw ModelError("config.json says num_hidden_layers \(config.numHiddenLayers) but the checkpoint holds \(present.count) layers; does the config belong to these weights?")
            }
        }
        embeddings = try Embeddings(loader, p + "embeddings", config: config,
                                    wordIsDecoder: config.tieWordEmbeddings && (head == .preTraining || head == .maskedLM))
        var layers: [EncoderLayer] = []
        for i in 0..<config.numHiddenLayers { layers.append(try EncoderLayer(loader, p + "encoder.layer.\(i)", config: config)) }
        self.layers = layers
        finalNorm = config.architecture == .megatronBERT
            ? try LayerNorm(loader, p + "encoder.ln", width: h, epsilon: config.layerNormEps) : nil
        if head.needsPooler || (head == .base && loader.contains(p + "pooler.dense.weight")) {
            pooler = try Pooler(loader, p + "pooler", hidden: h)
        } else {
            pooler = nil
        }
        taskHead = try TaskHead(head, loader, config: config, wordEmbeddings: embeddings.word)
        try loader.finish()
    }

    /// Runs the encoder and the head on a batch.
    ///
    /// Throws when the batch does not fit the model (ids outside the vocabulary, a sequence longer than
    /// `max_position_embeddings`, ragged rows, a multiple-choice model given a (B, S) batch …) or the memory left.
    /// With `runHead: false` only the encoder (and pooler) run: `head` is nil.
    public func forward(_ batch: Batch, runHead: Bool = true) throws -> ModelOutputs {
        let (x, b, s) = try encode(batch)  // (B·S, H) on the backend
        let pooled = try pooler?(x, firstRows: (0..<b).map { $0 * s }, on: backend)  // (B, H)
        let head = !runHead ? nil : try taskHead.outputs(hidden: x, pooled: pooled, batch: b, sequence: s,
                                                         choices: batch.numChoices, on: backend)
        return ModelOutputs(lastHiddenState: try backend.download(x).reshape([b, s, config.hiddenSize]),
                            poolerOutput: try pooled.map { try backend.download($0) }, head: head)
    }

    /// Runs the encoder and the head and waits for the device, leaving every output where it was computed: the
    /// forward pass without the copy to the host (what `bench` times on a GPU, as PyTorch's benchmark keeps its
    /// logits on the GPU). The same work as `forward` on the CPU.
    public func forwardOnDevice(_ batch: Batch, runHead: Bool = true) throws {
        let (x, b, s) = try encode(batch)
        let pooled = try pooler?(x, firstRows: (0..<b).map { $0 * s }, on: backend)
        if runHead {
            _ = try taskHead.deviceOutputs(hidden: x, pooled: pooled, batch: b, sequence: s, choices: batch.numChoices, on: backend)
        }
        try backend.synchronize()
    }

    /// The encoder on a batch: embeddings, every layer, the final LayerNorm. → (B·S, H), B, S.
    private func encode(_ batch: Batch) throws -> (hidden: any DeviceTensor, batch: Int, sequence: Int) {
        try batch.validate(against: config)
        let b = batch.inputIDs.count, s = batch.inputIDs[0].count
        try checkMemory(rows: b, sequence: s)
        let types = batch.tokenTypeIDs ?? Array(repeating: Array(repeating: 0, count: s), count: b)
        let keep = (batch.attentionMask ?? Array(repeating: Array(repeating: 1, count: s), count: b)).map { $0.map { Float($0) } }

        let x = try embeddings(ids: batch.inputIDs, types: types, on: backend)  // (B·S, H)
        for layer in layers { try layer(x, layout: .padded(batch: b, sequence: s, keep: keep), on: backend) }
        try finalNorm?.apply(x, on: backend)
        return (x, b, s)
    }

    /// Whether the pipelines run this model's batches packed (`forwardPacked`): its backend can, and packing pays
    /// there (the CPU's always; the GPU's with its fused attention).
    public var runsPackedSequences: Bool { backend.capabilities.prefersPackedSequences }

    /// The encoder (and pooler) on sequences of different lengths packed end to end, without padding: every product
    /// but attention costs only the real tokens, and each sequence attends over its own tokens. The same numbers as
    /// `forward(_:runHead: false)` on the padded batch (the same bits where the products do not depend on the number
    /// of rows, as oneDNN's on AVX-512).
    ///
    /// ```swift
    /// let packed = try model.forwardPacked(ids: [[101, 7592, 102], [101, 102]], types: [[0, 0, 0], [0, 0]])
    /// // packed.lastHiddenState (5, H); sequence 1 is rows packed.segments[1] = 3..<5
    /// ```
    /// - Parameters:
    ///   - ids: token ids per sequence, each at least one and at most `max_position_embeddings`.
    ///   - types: token type ids, the same shape.
    /// - Throws: for ids or types outside the model's vocabularies, a sequence that is empty or too long, a backend
    ///   without packed attention, or too little memory.
    public func forwardPacked(ids: [[Int]], types: [[Int]]) throws -> PackedOutputs {
        let (x, segments, pooled) = try encodePacked(ids: ids, types: types)
        return PackedOutputs(lastHiddenState: try backend.download(x), segments: segments,
                             poolerOutput: try pooled.map { try backend.download($0) })
    }

    /// `forwardPacked` with each sequence's rows pooled on the backend (`Backend.poolSegments`): only (B, H)
    /// comes back, not (Σ lengths, H) — what sentence embeddings need.
    ///
    /// ```swift
    /// let out = try model.forwardPackedPooled(ids: [[101, 7592, 102], [101, 102]], types: [[0, 0, 0], [0, 0]], pooling: .sum)
    /// print(out.pooledRows.shape)  // [2, hidden_size]: each sequence's summed rows
    /// ```
    public func forwardPackedPooled(ids: [[Int]], types: [[Int]], pooling: SegmentPooling) throws -> PackedPooledOutputs {
        let (x, segments, pooled) = try encodePacked(ids: ids, types: types)
        return PackedPooledOutputs(pooledRows: try backend.download(try backend.poolSegments(x, segments: segments, pooling)),
                                   poolerOutput: try pooled.map { try backend.download($0) })
    }

    /// The encoder and pooler of `forwardPacked`, outputs left on the device: (N, H), the segments, (B, H).
    private func encodePacked(ids: [[Int]], types: [[Int]]) throws
        -> (hidden: any DeviceTensor, segments: [Range<Int>], pooled: (any DeviceTensor)?) {
        guard backend.capabilities.packedSequences else {
            throw ModelError(.unsupported, "the \(backend.name) backend runs padded batches only: use forward(_:)")
        }
        guard !ids.isEmpty else { throw ModelError("no sequences to run") }
        guard types.count == ids.count, zip(ids, types).allSatisfy({ $0.count == $1.count }) else {
            throw ModelError("token_type_ids must have the shape of input_ids (one type per token)")
        }
        for (i, sequence) in ids.enumerated() {
            try Batch(inputIDs: [sequence], tokenTypeIDs: [types[i]]).validate(against: config)
        }
        // Activations grow with the tokens, so the memory of Σ lengths tokens: as R sequences of the mean length,
        // rounded up (not of the longest, which could refuse a pass of many short sequences and one long one).
        let total = ids.reduce(0) { $0 + $1.count }
        try checkMemory(rows: ids.count, sequence: (total + ids.count - 1) / ids.count)
        var segments: [Range<Int>] = [], next = 0
        for sequence in ids {
            segments.append(next..<next + sequence.count)
            next += sequence.count
        }
        let x = try embeddings(ids: ids, types: types, on: backend)  // (N, H), N = Σ lengths
        for layer in layers { try layer(x, layout: .packed(segments: segments), on: backend) }
        try finalNorm?.apply(x, on: backend)
        let pooled = try pooler?(x, firstRows: segments.map(\.lowerBound), on: backend)  // (B, H)
        return (x, segments, pooled)
    }

    /// `forwardPacked` without the copies to the host: the encoder and pooler on packed sequences, waiting for the
    /// device (what `bench --lengths` times, as `forwardOnDevice` for padded batches).
    public func forwardPackedOnDevice(ids: [[Int]], types: [[Int]]) throws {
        _ = try encodePacked(ids: ids, types: types)
        try backend.synchronize()
    }

    /// Masked-LM logits at chosen positions only: the encoder on the whole batch, the MLM head (dense → act →
    /// LayerNorm → decoder) on just those tokens — what fill-mask needs, without (B, S, V) logits.
    ///
    /// ```swift
    /// let logits = try model.maskedLMLogits(batch, at: [(row: 0, position: 6)])  // (1, 29056)
    /// ```
    /// - Returns: (positions.count, vocab_size), row i for `positions[i]`.
    /// - Throws: for a model without the masked-LM head, or a position outside the batch.
    public func maskedLMLogits(_ batch: Batch, at positions: [(row: Int, position: Int)]) throws -> Tensor {
        let mlm: MaskedLMHead
        switch taskHead {
        case .preTraining(let head, _), .maskedLM(let head): mlm = head
        default: throw ModelError(.unsupported, "masked-LM logits need a MegatronBertForPreTraining or MegatronBertForMaskedLM checkpoint (this one is MegatronBert\(head.rawValue))")
        }
        let b = batch.inputIDs.count, s = batch.inputIDs.first?.count ?? 0
        for p in positions where !(0..<b).contains(p.row) || !(0..<s).contains(p.position) {
            throw ModelError("position (\(p.row), \(p.position)) is outside the batch (\(b) x \(s))")
        }
        let (hidden, _, _) = try encode(batch)  // (B·S, H)
        let picked = try backend.gatherRows(hidden, rows: positions.map { $0.row * s + $0.position })  // (N, H)
        return try backend.download(mlm(picked, on: backend))  // (N, V)
    }

    /// Whether the checkpoint has the pooler (`pooler_output`).
    public var hasPooler: Bool { pooler != nil }

    /// The number of parameters, as transformers counts them (the tied MLM decoder once).
    public var parameterCount: Int {
        embeddings.parameterCount + layers.map(\.parameterCount).reduce(0, +) + (finalNorm?.parameterCount ?? 0)
            + (pooler?.dense.parameterCount ?? 0) + taskHead.parameterCount
    }
}
