import BERTTokenizer

/// Whether text B follows text A, from the pre-training next-sentence head.
public struct NextSentencePrediction: Sendable, Equatable, Codable {
    /// p(B follows A): softmax index 0 of the binary head.
    public var isNextProbability: Double
    /// `isNextProbability >= 0.5`.
    public var isNext: Bool { isNextProbability >= 0.5 }

    enum CodingKeys: String, CodingKey { case isNextProbability = "is_next_probability" }
}

extension Pipeline {
    /// The probability that each pair's second text follows its first.
    ///
    /// ```swift
    /// let p = try pipeline.nextSentence([("It rained all day.", "The streets were wet.")])[0].isNextProbability
    /// ```
    /// - Throws: for a model without the next-sentence head (`cls.seq_relationship`).
    public func nextSentence(_ pairs: [(String, String)]) throws -> [NextSentencePrediction] {
        try requireHead([.preTraining, .nextSentencePrediction], for: "next-sentence prediction",
                        hint: "NVIDIA's megatron-bert-cased-345m (MegatronBertForPreTraining) has the binary head")
        let encodings = try pairs.map { try encodeTruncating($0.0, pair: $0.1) }
        var results = [NextSentencePrediction](repeating: NextSentencePrediction(isNextProbability: 0), count: pairs.count)
        try forEachBatch(encodings) { outputs, rows in
            let logits = try headOutput(outputs, ["seq_relationship_logits", "logits"], task: "next-sentence prediction")  // (B, 2)
            for (b, index) in rows.enumerated() {
                results[index].isNextProbability = softmax(logits.data + 2 * b, count: 2)[0]
            }
        }
        return results
    }
}
