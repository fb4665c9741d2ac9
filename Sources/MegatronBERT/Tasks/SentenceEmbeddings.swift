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
    public var work: RowWork { .encoder }

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
        // Each window's own sum (mean), maximum (max) or vector (cls, pooler) in float64, and its weight; the windows
        // on every core (a GPU's packed passes bring back ~16,000 tokens × H at a time).
        var partials = [(vector: [Double], weight: Double)](repeating: ([], 0), count: outputs.count)
        var failure: Error?
        let lock = NSLock()
        let parts = min(outputs.count, max(1, ProcessInfo.processInfo.activeProcessorCount))
        partials.withUnsafeMutableBufferPointer { results in
            let results = results
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                for i in outputs.count * part / parts..<outputs.count * (part + 1) / parts {
                    do { results[i] = try window(outputs[i], width: h) } catch {
                        lock.lock()
                        failure = failure ?? error
                        lock.unlock()
                    }
                }
            }
        }
        if let failure { throw failure }
        var sums = [[Double]](repeating: [Double](repeating: pooling == .max ? -.infinity : 0, count: h), count: plan.inputs.count)
        var weights = [Double](repeating: 0, count: plan.inputs.count)
        for (partial, text) in zip(partials, plan.owner) {
            for j in 0..<h { sums[text][j] = pooling == .max ? Swift.max(sums[text][j], partial.vector[j]) : sums[text][j] + partial.vector[j] }
            weights[text] = pooling == .max ? 1 : weights[text] + partial.weight
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

    /// One window's pooled vector (H) and its weight: the sum over its tokens and their count (mean), the maximum
    /// (max), or its [CLS] / pooler vector with weight 1.
    private func window(_ output: RowOutput, width h: Int) throws -> (vector: [Double], weight: Double) {
        guard let hidden = output.hidden else { throw missingOutput("hidden states", task: "embedding") }  // (tokens, H)
        let kept = hidden.count / h  // unpadded: every token is kept
        switch pooling {
        case .cls, .pooler:
            guard let vector = pooling == .cls ? Array(hidden.prefix(h)) : output.pooled else {  // (H)
                throw missingOutput("pooled output", task: "embedding")
            }
            return (vector.map(Double.init), 1)
        case .mean, .max:
            var result = [Double](repeating: pooling == .max ? -.infinity : 0, count: h)
            hidden.withUnsafeBufferPointer { tokens in
                result.withUnsafeMutableBufferPointer { out in
                    for t in 0..<kept {
                        let row = tokens.baseAddress! + t * h
                        if pooling == .max {
                            for j in 0..<h { out[j] = Swift.max(out[j], Double(row[j])) }
                        } else {
                            for j in 0..<h { out[j] += Double(row[j]) }
                        }
                    }
                }
            }
            return (result, Double(kept))
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
