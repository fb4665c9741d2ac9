import BERTTokenizer

/// One unit of work for the model, unpadded: a sequence, or for multiple choice the C sequences of one example
/// (they run together, as a (1, C, S) slice of a (B, C, S) batch).
public struct ModelRow: Sendable, Equatable {
    public var encodings: [Encoding]
    /// Token positions whose masked-LM logits the task wants (fill-mask); empty for the other tasks.
    public var maskedPositions: [Int]

    /// A row of one sequence (with the positions fill-mask wants logits at).
    public init(_ encoding: Encoding, maskedPositions: [Int] = []) {
        encodings = [encoding]
        self.maskedPositions = maskedPositions
    }

    /// A multiple-choice example: one encoding per choice.
    public init(choices: [Encoding]) {
        encodings = choices
        maskedPositions = []
    }

    /// Its longest sequence, in tokens.
    public var length: Int { encodings.map(\.count).max() ?? 0 }
}

/// What an executor computes for the rows of a task.
public enum RowWork: Sendable, Hashable {
    /// The encoder's output at every token and the pooled output (embeddings); the head does not run.
    case encoder
    /// The encoder's output pooled over each row's tokens (`RowOutput.pooledRow`: their sum, maximum or first) and the
    /// pooled output: on the backend where it pools packed rows (`BackendCapabilities.poolsSegments`), so that only one
    /// vector per row comes back; else on the host.
    case pooledEncoder(SegmentPooling)
    /// The head's outputs.
    case head
    /// Masked-LM logits at each row's `maskedPositions` only (fill-mask).
    case maskedPositions
}

/// The head's output for one row, typed, without padding.
public enum RowHead: Sendable {
    /// (masked positions, vocabulary): logits at the row's `maskedPositions`, in order.
    case maskedLM(logits: [Float], vocabulary: Int)
    /// (2): index 0 = "B follows A".
    case nextSentence(logits: [Float])
    /// (labels).
    case sequenceClassification(logits: [Float])
    /// (tokens, labels).
    case tokenClassification(logits: [Float], labels: Int)
    /// (tokens) each.
    case questionAnswering(start: [Float], end: [Float])
    /// (choices).
    case multipleChoice(logits: [Float])
}

/// What the model computed for one row.
public struct RowOutput: Sendable {
    /// (tokens, H): the encoder's output at the row's own tokens (`RowWork.encoder`).
    public var hidden: [Float]?
    /// (H): the pooled output, when the model has a pooler (`RowWork.encoder`, `.pooledEncoder`).
    public var pooled: [Float]?
    /// (H): the encoder's output pooled over the row's tokens (`RowWork.pooledEncoder`).
    public var pooledRow: [Float]?
    /// The head's output (`RowWork.head`, `.maskedPositions`).
    public var head: RowHead?

    /// An output; executors fill what the work asked for.
    public init(hidden: [Float]? = nil, pooled: [Float]? = nil, head: RowHead? = nil) {
        self.hidden = hidden
        self.pooled = pooled
        self.head = head
    }
}
