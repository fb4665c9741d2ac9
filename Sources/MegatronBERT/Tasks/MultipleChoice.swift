import BERTTokenizer

/// One candidate ending and how likely the model finds it.
public struct ChoiceScore: Sendable, Equatable, Codable {
    /// The choice's position in the input.
    public var index: Int
    public var choice: String
    /// Softmax over the choices' logits.
    public var score: Double
    /// The head's raw score.
    public var logit: Double
}

extension Pipeline {
    /// Scores candidate endings of a prompt with a multiple-choice head: each (prompt, choice) pair is one row
    /// of a (1, C, S) batch, as `MegatronBertForMultipleChoice` takes it. Results are best first.
    ///
    /// ```swift
    /// let ranked = try pipeline.multipleChoice(prompt: "The cat sat on the", choices: ["mat.", "moon."])
    /// print(ranked[0].choice)
    /// ```
    public func multipleChoice(prompt: String, choices: [String]) throws -> [ChoiceScore] {
        try requireHead([.multipleChoice], for: "multiple choice",
                        hint: "fine-tune a MegatronBertForMultipleChoice head (e.g. on SWAG) and pass that checkpoint")
        guard !choices.isEmpty else { throw ModelError("multiple choice needs at least one choice") }
        let padded = tokenizer.pad(try choices.map { try encodeTruncating(prompt, pair: $0) })
        let batch = Batch(inputIDs: padded.map(\.ids), attentionMask: padded.map(\.attentionMask),
                          tokenTypeIDs: padded.map(\.typeIDs), numChoices: choices.count)
        let logits = try headOutput(try model.forward(batch), ["logits"], task: "multiple choice")  // (1, C)
        let probabilities = softmax(logits.data, count: choices.count)
        return choices.indices
            .map { ChoiceScore(index: $0, choice: choices[$0], score: probabilities[$0], logit: Double(logits[$0])) }
            .sorted { ($0.score, -$0.index) > ($1.score, -$1.index) }
    }
}
