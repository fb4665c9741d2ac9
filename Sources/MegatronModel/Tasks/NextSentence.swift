import BERTTokenizer

/// Whether text B follows text A, from the pre-training next-sentence head.
public struct NextSentencePrediction: Sendable, Equatable, Codable {
    /// p(B follows A): softmax index 0 of the binary head.
    public var isNextProbability: Double
    /// `isNextProbability >= 0.5`.
    public var isNext: Bool { isNextProbability >= 0.5 }

    enum CodingKeys: String, CodingKey { case isNextProbability = "is_next_probability" }
}

/// Next-sentence prediction: one row per pair, truncated to the model's limit (with a warning).
public struct NextSentenceTask: ModelTask {
    public let pipeline: Pipeline
    public var work: RowWork { .head }

    /// - Throws: for a model without the next-sentence head (`cls.seq_relationship`).
    public init(pipeline: Pipeline) throws {
        try pipeline.require(.nextSentence)
        self.pipeline = pipeline
    }

    /// One row per pair (`textPair` is required).
    public func prepare(_ pairs: [TextInput]) throws -> (rows: [ModelRow], plan: Int) {
        let rows = try pairs.map { input -> ModelRow in
            guard let pair = input.textPair else {
                throw ModelError("next-sentence prediction needs two texts: give \"text_pair\" too")
            }
            return ModelRow(try pipeline.encodeTruncating(input.text, pair: pair))
        }
        return (rows, pairs.count)
    }

    /// p(B follows A) per pair.
    public func finish(_ outputs: [RowOutput], plan: Int) throws -> [NextSentencePrediction] {
        try outputs.map { output in
            guard case .nextSentence(let logits)? = output.head else { throw missingOutput("next-sentence logits", task: "next-sentence prediction") }
            return logits.withUnsafeBufferPointer { NextSentencePrediction(isNextProbability: softmax($0.baseAddress!, count: 2)[0]) }
        }
    }
}

extension Pipeline {
    /// The probability that each pair's second text follows its first.
    ///
    /// ```swift
    /// let p = try pipeline.nextSentence([("It rained all day.", "The streets were wet.")])[0].isNextProbability
    /// ```
    /// - Throws: for a model without the next-sentence head (`cls.seq_relationship`).
    public func nextSentence(_ pairs: [(String, String)]) throws -> [NextSentencePrediction] {
        try run(try NextSentenceTask(pipeline: self), pairs.map { TextInput(text: $0.0, textPair: $0.1) })
    }
}
