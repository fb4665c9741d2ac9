import Foundation
import BERTTokenizer
import MegatronBackend
import MegatronModel

extension ClassificationTrainer {
    /// `run` for extractive question answering, as transformers' `run_qa` trains: a `…ForQuestionAnswering` model on
    /// each question's windows (`QuestionFeatures`: `options.maxLength` tokens, `options.docStride` shared), the span
    /// loss against the first answer's tokens ([CLS] where a window lacks it); evaluated (with `eval`) through the
    /// question-answering pipeline's own post-processing (`AnswerSpans`) and scored as the official SQuAD v2.0 script
    /// scores: `exact`, `f1` (and `HasAns_…` / `NoAns_…` with unanswerable questions) and the windows' `loss`.
    ///
    /// ```swift
    /// let trainer = try ClassificationTrainer(model: qaModel, tokenizer: tokenizer, labels: .answerSpans, options: options)
    /// let summary = try trainer.run(questions: try QuestionAnswers.read("train.json"), eval: dev, output: "./my-qa",
    ///                               tokenizerDirectory: dir)
    /// ```
    public func run(questions train: [QuestionExample], eval: [QuestionExample]?, output: String, tokenizerDirectory: String?,
                    resume: Bool = false) throws -> Summary {
        guard model.head == .questionAnswering else { throw TrainingError("questions train a question-answering model; this model classifies") }
        let held = try eval.map { ($0, try prepare(questions: $0)) }
        return try run(examples: try prepare(questions: train).flatMap { $0 },
                       evaluate: held.map { examples, windows in { try self.answerEvaluation(examples, windows: windows) } },
                       metrics: ["loss", "exact", "f1"], output: output, tokenizerDirectory: tokenizerDirectory, resume: resume)
    }

    /// Each question's windows, with their start and end tokens as the targets.
    func prepare(questions: [QuestionExample]) throws -> [[Prepared]] {
        let stride = options.docStride
        guard stride < maxLength - 3 else {
            throw TrainingError("--doc-stride \(stride) must be under --max-length \(maxLength) less the question and three special tokens")
        }
        return try questions.map { example in
            try QuestionFeatures.windows(example, tokenizer: tokenizer, maxLength: maxLength, stride: stride).map {
                Prepared(encoding: $0.encoding, targets: [Double($0.start), Double($0.end)])
            }
        }
    }

    /// The best answer to each question (or "" for no answer, when `options.versionTwoWithNegative` and its score is
    /// over the best span's by more than `options.nullScoreDiffThreshold` in log probability), dropout off; and the
    /// windows' mean loss.
    func predictions(_ examples: [QuestionExample], windows: [[Prepared]]) throws -> (answers: [String], loss: Double) {
        let flat = windows.flatMap { $0 }
        var logits: [(start: [Float], end: [Float])] = []
        var lossSum = 0.0, counted = 0.0
        try evaluationBatches(flat) { indices, batch, output in
            let (loss, _) = try objective(batch.targets)(output)
            lossSum += loss * Double(indices.count)
            counted += Double(indices.count)
            let s = batch.ids.first?.count ?? 0
            for (row, i) in indices.enumerated() {
                let n = flat[i].encoding.count
                logits.append(((0..<n).map { output[(row * s + $0) * 2] }, (0..<n).map { output[(row * s + $0) * 2 + 1] }))
            }
        }
        let search = AnswerOptions(topK: 1, maxAnswerLength: options.maxAnswerLength)
        var first = 0
        let answers = zip(examples, windows).map { example, own -> String in
            defer { first += own.count }
            let found = AnswerSpans.answers(windows: own.map(\.encoding), logits: Array(logits[first..<(first + own.count)]),
                                            context: example.context, options: search)
            guard let best = found.answers.first else { return "" }
            if options.versionTwoWithNegative && log(found.noAnswer) - log(best.score) > options.nullScoreDiffThreshold { return "" }
            return best.answer
        }
        return (answers, lossSum / max(counted, 1))
    }

    /// SQuAD's metrics of `predictions` and the loss.
    func answerEvaluation(_ examples: [QuestionExample], windows: [[Prepared]]) throws -> [String: Double] {
        let (answers, loss) = try predictions(examples, windows: windows)
        var metrics = SQuADMetrics.scores(gold: examples.map { $0.answers.map(\.text) }, predicted: answers)
        metrics["loss"] = loss
        return metrics
    }

    /// Exact match, F1 (SQuAD v2.0's script) and the loss on held-out questions.
    public func evaluation(questions: [QuestionExample]) throws -> [String: Double] {
        try answerEvaluation(questions, windows: try prepare(questions: questions))
    }
}
