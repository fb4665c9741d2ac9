import BERTTokenizer
import Foundation

/// How token vectors become one sentence vector.
public enum Pooling: String, Sendable, CaseIterable {
    /// The [CLS] token's final hidden state.
    case cls
    /// The mean over the tokens the attention mask keeps (special tokens included), as sentence-transformers does.
    case mean
    /// The element-wise maximum over the kept tokens.
    case max
    /// The pooler's output, `tanh(dense(h[CLS]))` (checkpoints with a pooler only).
    case pooler
}

/// Sentence vectors (hidden_size floats each). A text longer than the model's limit is cut into windows that
/// overlap by `stride` tokens; the windows' vectors are combined: `mean` weights every window by its token count
/// (each token once per window it is in), `max` takes the element-wise maximum, `cls` and `pooler` average the windows.
public struct EmbeddingTask: ModelTask {
    public let pipeline: Pipeline
    public let pooling: Pooling
    /// Scale each vector to unit L2 norm.
    public let normalize: Bool
    /// Tokens shared by neighbouring windows of a long text.
    public let stride: Int
    /// Each window pooled where it ran (one vector per window back from a GPU): summed for mean pooling, the maximum,
    /// or the first row for cls (and for the pooler, whose output comes with it).
    public var work: RowWork {
        switch pooling {
        case .mean: .pooledEncoder(.sum)
        case .max: .pooledEncoder(.max)
        case .cls, .pooler: .pooledEncoder(.first)
        }
    }

    /// - Parameter stride: nil for an eighth of the model's limit.
    public init(pipeline: Pipeline, pooling: Pooling = .mean, normalize: Bool = false, stride: Int? = nil) throws {
        if pooling == .pooler && !pipeline.model.hasPooler {
            throw ModelError(.unsupported, "\(pipeline.source) has no pooler (bert.pooler.dense), so --pooling pooler cannot work: use mean, cls or max")
        }
        self.pipeline = pipeline
        self.pooling = pooling
        self.normalize = normalize
        self.stride = stride ?? pipeline.maxLength / 8
    }

    /// Windows over each text.
    public func prepare(_ texts: [String]) throws -> (rows: [ModelRow], plan: RowOwners<String>) {
        try pipeline.rows(texts) { try pipeline.tokenizer.encodeWindows($0, maxLength: pipeline.maxLength, stride: stride) }
    }

    /// One vector per text, its windows combined.
    public func finish(_ outputs: [RowOutput], plan: RowOwners<String>) throws -> [[Float]] {
        let h = pipeline.model.config.hiddenSize
        var sums = [[Double]](repeating: [Double](repeating: pooling == .max ? -.infinity : 0, count: h), count: plan.inputs.count)
        var weights = [Double](repeating: 0, count: plan.inputs.count)
        for (i, (output, text)) in zip(outputs, plan.owner).enumerated() {
            // The window's (H) vector: its tokens' sum (mean, weighted by its token count), maximum, [CLS] or pooler.
            guard let vector = pooling == .pooler ? output.pooled : output.pooledRow, vector.count == h else {
                throw missingOutput(pooling == .pooler ? "pooled output" : "pooled rows", task: "embedding")
            }
            switch pooling {
            case .mean:
                for j in 0..<h { sums[text][j] += Double(vector[j]) }
                weights[text] += Double(plan.rows[i].length)
            case .max:
                for j in 0..<h { sums[text][j] = Swift.max(sums[text][j], Double(vector[j])) }
                weights[text] = 1
            case .cls, .pooler:
                for j in 0..<h { sums[text][j] += Double(vector[j]) }
                weights[text] += 1
            }
        }
        return sums.indices.map { i in
            var vector = sums[i].map { $0 / weights[i] }
            if normalize {
                let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > 0 { vector = vector.map { $0 / norm } }
            }
            return vector.map(Float.init)
        }
    }
}

extension Pipeline {
    /// Sentence vectors (see `EmbeddingTask`).
    ///
    /// ```swift
    /// let vectors = try pipeline.embed(["A sentence.", "Another one."], pooling: .mean, normalize: true)
    /// let cosine = zip(vectors[0], vectors[1]).map(*).reduce(0, +)
    /// ```
    /// - Parameters:
    ///   - normalize: scale each vector to unit L2 norm.
    ///   - stride: tokens shared by neighbouring windows of a long text (nil: an eighth of `maxLength`).
    public func embed(_ texts: [String], pooling: Pooling = .mean, normalize: Bool = false,
                      stride: Int? = nil) throws -> [[Float]] {
        try run(try EmbeddingTask(pipeline: self, pooling: pooling, normalize: normalize, stride: stride), texts)
    }

    /// Cosine similarity of two texts' sentence vectors.
    ///
    /// ```swift
    /// let s = try pipeline.similarity("A man is eating.", "Someone eats food.")  // in [-1, 1]
    /// ```
    public func similarity(_ a: String, _ b: String, pooling: Pooling = .mean) throws -> Double {
        let vectors = try embed([a, b], pooling: pooling, normalize: true)
        return Self.cosine(vectors[0], vectors[1])
    }

    /// Cosine of two vectors of the same length (0 when either is zero).
    public static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        return na > 0 && nb > 0 ? dot / (na * nb).squareRoot() : 0
    }
}
