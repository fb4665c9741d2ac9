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

/// Multiple choice: each example (a prompt and its candidate endings) is one row of C sequences, run as a
/// (1, C, S) slice of a (B, C, S) batch, as `MegatronBertForMultipleChoice` takes it. Results are best first.
public struct MultipleChoiceTask: ModelTask {
    public let pipeline: Pipeline
    public var work: RowWork { .head }

    /// - Throws: for a model without a multiple-choice head.
    public init(pipeline: Pipeline) throws {
        try pipeline.require(.multipleChoice)
        self.pipeline = pipeline
    }

    /// One row of C sequences per example.
    public func prepare(_ examples: [ChoiceInput]) throws -> (rows: [ModelRow], plan: [[String]]) {
        let rows = try examples.map { example -> ModelRow in
            guard !example.choices.isEmpty else { throw ModelError("multiple choice needs at least one choice") }
            return ModelRow(choices: try example.choices.map { try pipeline.encodeTruncating(example.prompt, pair: $0) })
        }
        return (rows, examples.map(\.choices))
    }

    /// Per example, the choices best first.
    public func finish(_ outputs: [RowOutput], plan choices: [[String]]) throws -> [[ChoiceScore]] {
        try zip(outputs, choices).map { output, choices in
            guard case .multipleChoice(let logits)? = output.head else { throw missingOutput("choice logits", task: "multiple choice") }
            let probabilities = logits.withUnsafeBufferPointer { softmax($0.baseAddress!, count: choices.count) }
            return choices.indices
                .map { ChoiceScore(index: $0, choice: choices[$0], score: probabilities[$0], logit: Double(logits[$0])) }
                .sorted { ($0.score, -$0.index) > ($1.score, -$1.index) }
        }
    }
}

extension Pipeline {
    /// Scores candidate endings of a prompt with a multiple-choice head, best first.
    ///
    /// ```swift
    /// let ranked = try pipeline.multipleChoice(prompt: "The cat sat on the", choices: ["mat.", "moon."])
    /// print(ranked[0].choice)
    /// ```
    public func multipleChoice(prompt: String, choices: [String]) throws -> [ChoiceScore] {
        try run(try MultipleChoiceTask(pipeline: self), [ChoiceInput(prompt: prompt, choices: choices)])[0]
    }

    /// Many examples at once, batched (`batchSize` examples with the same number of choices per forward pass).
    public func multipleChoice(_ examples: [ChoiceInput]) throws -> [[ChoiceScore]] {
        try run(try MultipleChoiceTask(pipeline: self), examples)
    }
}
