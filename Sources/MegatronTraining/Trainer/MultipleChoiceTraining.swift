import BERTTokenizer
import MegatronBackend

extension ClassificationTrainer {
    /// `run` for multiple choice, as transformers' `run_swag` trains: a `…ForMultipleChoice` model on each example's
    /// (prompt, choice) pairs (cut to `maxLength` tokens, the longer text first), cross-entropy over the choices'
    /// scores; evaluated (with `eval`) by `accuracy` and `loss`.
    ///
    /// ```swift
    /// let trainer = try ClassificationTrainer(model: choiceModel, tokenizer: tokenizer, labels: .choices, options: options)
    /// let summary = try trainer.run(choices: try ChoiceExamples.read("train.jsonl"), eval: dev, output: "./my-swag",
    ///                               tokenizerDirectory: dir)
    /// ```
    public func run(choices train: [ChoiceExample], eval: [ChoiceExample]?, output: String, tokenizerDirectory: String?,
                    resume: Bool = false) throws -> Summary {
        guard model.head == .multipleChoice else { throw TrainingError("multiple-choice examples train a multiple-choice model; this model does not score choices") }
        let held = try eval.map { try prepare(choices: $0) }
        return try run(examples: try prepare(choices: train), evaluate: held.map { held in { try self.choiceEvaluation(held) } },
                       metrics: ["loss", "accuracy"], output: output, tokenizerDirectory: tokenizerDirectory, resume: resume)
    }

    /// Each example's (prompt, choice) encodings, its label the target.
    func prepare(choices examples: [ChoiceExample]) throws -> [Prepared] {
        var cut = 0
        let prepared = try examples.map { example in
            Prepared(choices: try example.choices.map { choice in
                let (encoding, truncated) = try tokenizer.encodeTruncating(example.prompt, pair: choice, maxLength: maxLength)
                if truncated { cut += 1 }
                return encoding
            }, targets: [Double(example.label)])
        }
        if cut > 0 { warn("\(cut) (prompt, choice) pairs are longer than \(maxLength) tokens and were cut to them (--max-length)") }
        return prepared
    }

    /// Accuracy (the highest-scoring choice against the label) and the loss, dropout off.
    func choiceEvaluation(_ examples: [Prepared]) throws -> [String: Double] {
        var lossSum = 0.0, right = 0
        try evaluationBatches(examples) { indices, batch, logits in
            lossSum += try objective(batch.targets)(logits).loss * Double(indices.count)
            let c = logits.count / indices.count
            for (row, i) in indices.enumerated() {
                let scores = (0..<c).map { logits[row * c + $0] }
                if scores.indices.max(by: { scores[$0] < scores[$1] }) == Int(examples[i].targets[0]) { right += 1 }
            }
        }
        return ["accuracy": Double(right) / Double(max(examples.count, 1)), "loss": lossSum / Double(max(examples.count, 1))]
    }

    /// Accuracy and loss on held-out multiple-choice examples.
    public func evaluation(choices: [ChoiceExample]) throws -> [String: Double] { try choiceEvaluation(try prepare(choices: choices)) }
}
