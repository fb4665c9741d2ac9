import BERTTokenizer
import Foundation

/// A model with its tokenizer: what every task shares — loading both from one path, the length limit,
/// truncation with a warning, and the executor that runs the tasks' rows (length-sorted batches). Immutable, so one
/// pipeline can serve many tasks and threads at once.
///
/// ```swift
/// let pipeline = try Pipeline(path: "/models/megatron-bert-cased-345m")
/// let predictions = try pipeline.fillMask(["The capital of France is [MASK]."])
/// print(predictions[0][0][0].tokenString)  // the best filler of the first mask of the first text
/// ```
public final class Pipeline: Sendable {
    public let model: MegatronBERTModel
    public let tokenizer: BERTTokenizer
    /// Where the model came from (named in errors).
    public let source: String
    /// The most tokens one sequence may hold: the tokenizer's `model_max_length` capped by the model's
    /// `max_position_embeddings`.
    public let maxLength: Int
    /// Sequences per forward pass.
    public let batchSize: Int
    /// Runs the tasks' rows: length-sorted batches of `batchSize`.
    public let executor: SortedBatchExecutor
    /// Receives warnings (a truncated input, a target not in the vocabulary …).
    public let warn: @Sendable (String) -> Void

    /// Pairs a loaded model with its tokenizer.
    /// - Parameter warn: receives warnings; silent by default.
    /// - Throws: when the tokenizer has more tokens than the model has embedding rows, or a batch of `batchSize`
    ///   sequences of the model's limit would not fit in memory.
    public init(model: MegatronBERTModel, tokenizer: BERTTokenizer, source: String = "the model", batchSize: Int = 8,
                warn: @escaping @Sendable (String) -> Void = { _ in }) throws {
        guard tokenizer.vocabulary.count <= model.config.vocabSize else {
            throw ModelError("the tokenizer has \(tokenizer.vocabulary.count) tokens but \(source) has only \(model.config.vocabSize) embedding rows (vocab_size): the vocabulary does not belong to this model")
        }
        guard batchSize >= 1 else { throw ModelError("batch size must be at least 1 (got \(batchSize))") }
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        self.batchSize = batchSize
        self.warn = warn
        maxLength = min(tokenizer.modelMaxLength ?? model.config.maxPositionEmbeddings, model.config.maxPositionEmbeddings)
        executor = SortedBatchExecutor(model: model, tokenizer: tokenizer, batchSize: batchSize)
        // The largest batch the tasks can make (batchSize sequences of maxLength tokens) must fit in memory.
        do {
            try model.checkMemory(rows: batchSize, sequence: maxLength)
        } catch let error as ModelError {
            throw ModelError(.resource, "batch size \(batchSize) is too large for this machine: \(error.message)")
        }
    }

    /// Loads a model (any path `ModelSource.open` takes) and its tokenizer: from `vocabulary` (a
    /// vocab.txt; lowercasing as the directory's tokenizer_config.json says, else when the vocabulary has no
    /// upper-case pieces) when given, else from the model directory (tokenizer.json or vocab.txt with
    /// tokenizer_config.json), else from a vocab.txt beside a Megatron-LM file.
    /// `fallbackVocabulary` serves only a model that has no tokenizer of its own (a Megatron-LM file).
    public convenience init(path: String, dtype: DType = .fp32, vocabulary: String? = nil, fallbackVocabulary: String? = nil,
                            batchSize: Int = 8, backend: any Backend,
                            warn: @escaping @Sendable (String) -> Void = { _ in }) throws {
        let source = try ModelSource.open(path)
        let model = try MegatronBERTModel(source: source, dtype: dtype, backend: backend)
        let tokenizer: BERTTokenizer
        do {
            tokenizer = try BERTTokenizer(directory: source.tokenizerDirectory, vocabularyFile: vocabulary)
        } catch let error as TokenizerError where error.message.hasPrefix("no tokenizer in") && fallbackVocabulary != nil {
            tokenizer = try BERTTokenizer(directory: source.tokenizerDirectory, vocabularyFile: fallbackVocabulary)
        } catch let error as TokenizerError where error.message.hasPrefix("no tokenizer in") {
            throw ModelError("\(path) has no tokenizer (vocab.txt or tokenizer.json beside the weights): pass the vocabulary (--vocab vocab/megatron-bert-cased-vocab.txt for NVIDIA's cased model)")
        }
        try self.init(model: model, tokenizer: tokenizer, source: path, batchSize: batchSize, warn: warn)
    }

    /// Encodes a text (or pair) within `maxLength`: over it, the longer text is cut on `side` with a warning, or,
    /// when `truncate` is false, the input is refused.
    func encodeTruncating(_ text: String, pair: String? = nil, side: TruncationSide = .right, truncate: Bool = true) throws -> Encoding {
        let (encoding, truncated) = try tokenizer.encodeTruncating(text, pair: pair, maxLength: maxLength, truncation: .longestFirst, side: side)
        if truncated {
            guard truncate else {
                throw ModelError("an input has more than the model's \(maxLength) tokens: \"\(Self.preview(text))\" (ask for truncation to cut it)")
            }
            warn("an input over the model's \(maxLength) tokens was truncated to them: \"\(Self.preview(text))\"")
        }
        return encoding
    }

    /// The first characters of a text, for messages.
    static func preview(_ text: String) -> String {
        text.count <= 40 ? text : String(text.prefix(37)) + "..."
    }

    /// Throws unless the model's head is one of `heads`; the message says which checkpoint has what the task needs.
    /// Throws unless this model has a head that serves `task` (the message names the heads and what to use instead).
    func require(_ task: TaskDescriptor) throws {
        guard !task.serves(model.head) else { return }
        let wanted = (task.heads ?? []).map { "MegatronBert" + $0.rawValue }.joined(separator: " or ")
        throw ModelError(.unsupported, "\(task.title) needs a model with a \(wanted) head, but \(source) is MegatronBert\(model.head.rawValue): \(task.hint)")
    }
}

/// Softmax of `n` FP32 logits, computed in Double.
func softmax(_ logits: UnsafePointer<Float>, count n: Int) -> [Double] {
    var top = -Double.infinity
    for i in 0..<n { top = max(top, Double(logits[i])) }
    var values = (0..<n).map { exp(Double(logits[$0]) - top) }
    let sum = values.reduce(0, +)
    for i in 0..<n { values[i] /= sum }
    return values
}

/// The indices of the `k` largest values (ties: the lower index first), best first.
func topIndices(_ values: [Double], among candidates: [Int], k: Int) -> [Int] {
    var best: [Int] = []
    best.reserveCapacity(k + 1)
    func better(_ a: Int, _ b: Int) -> Bool { values[a] > values[b] || (values[a] == values[b] && a < b) }
    for i in candidates {
        if best.count == k, let last = best.last, !better(i, last) { continue }
        let at = best.firstIndex { better(i, $0) } ?? best.count
        best.insert(i, at: at)
        if best.count > k { best.removeLast() }
    }
    return best
}
