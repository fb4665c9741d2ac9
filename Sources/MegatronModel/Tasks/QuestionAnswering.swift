import BERTTokenizer
import Foundation

/// An extractive answer: a span of the context.
public struct Answer: Sendable, Equatable, Codable {
    /// p(start) · p(end), each a softmax over the window's context tokens (and [CLS]).
    public var score: Double
    /// Character offsets into the context (`context[start..<end]`, Unicode scalars as Python counts).
    public var start: Int
    public var end: Int
    /// The context's text between them ("" for "no answer").
    public var answer: String
}

/// Settings of extractive question answering (transformers v4's question-answering pipeline defaults).
public struct AnswerOptions: Sendable {
    /// Answers to return, best first.
    public var topK = 1
    /// The most tokens an answer may span.
    public var maxAnswerLength = 15
    /// Tokens shared by neighbouring windows of a long context (nil: min(maxSequenceLength / 2, 128)).
    public var docStride: Int?
    /// Tokens per window, question and special tokens included (nil: min(384, the model's limit)).
    public var maxSequenceLength: Int?
    /// Also offer "no answer" (score p([CLS] start) · p([CLS] end), the lowest over the windows).
    public var allowNoAnswer = false

    /// The settings, with transformers v4's defaults.
    public init(topK: Int = 1, maxAnswerLength: Int = 15, docStride: Int? = nil, maxSequenceLength: Int? = nil,
                allowNoAnswer: Bool = false) {
        self.topK = topK
        self.maxAnswerLength = maxAnswerLength
        self.docStride = docStride
        self.maxSequenceLength = maxSequenceLength
        self.allowNoAnswer = allowNoAnswer
    }
}

/// Extractive question answering as transformers v4's question-answering pipeline did it: `[CLS] question [SEP]
/// context [SEP]` windows over a long context, softmax over each window's context tokens, spans of at most
/// `maxAnswerLength` tokens widened to whole words, best `topK` over all windows.
public struct QuestionAnsweringTask: ModelTask {
    public let pipeline: Pipeline
    public let options: AnswerOptions
    /// Tokens per window and the overlap of neighbouring windows.
    let length: Int, stride: Int
    public var work: RowWork { .head }

    public init(pipeline: Pipeline, options: AnswerOptions = AnswerOptions()) throws {
        try pipeline.require(.questionAnswering)
        try TaskDescriptor.questionAnswering.check("top_k", options.topK)
        try TaskDescriptor.questionAnswering.check("max_answer_len", options.maxAnswerLength)
        self.pipeline = pipeline
        self.options = options
        length = min(options.maxSequenceLength ?? min(384, pipeline.maxLength), pipeline.maxLength)
        stride = options.docStride ?? min(length / 2, 128)
    }

    /// `[CLS] question [SEP] context [SEP]` windows over each context.
    public func prepare(_ inputs: [QuestionInput]) throws
        -> (rows: [ModelRow], plan: RowOwners<QuestionInput>) {
        try pipeline.rows(inputs) { input in
            guard !input.question.isEmpty, !input.context.isEmpty else {
                throw ModelError("question answering needs a non-empty question and context")
            }
            do {
                return try pipeline.tokenizer.encodeWindows(input.question, pair: input.context, maxLength: length, stride: stride,
                                                            truncation: .onlySecond)
            } catch let error as TokenizerError {
                throw ModelError("cannot fit the question \"\(Pipeline.preview(input.question))\" with its context in \(length) tokens per window (doc stride \(stride)): \(error.message)")
            }
        }
    }

    /// Per question, the `topK` answers over all its windows, best first.
    public func finish(_ outputs: [RowOutput], plan: RowOwners<QuestionInput>) throws -> [[Answer]] {
        var windows = [[Encoding]](repeating: [], count: plan.inputs.count)
        var logits = [[(start: [Float], end: [Float])]](repeating: [], count: plan.inputs.count)
        for (index, output) in outputs.enumerated() {
            guard case .questionAnswering(let start, let end)? = output.head else {
                throw missingOutput("start and end logits", task: "question answering")
            }
            windows[plan.owner[index]].append(plan.rows[index].encodings[0])
            logits[plan.owner[index]].append((start, end))
        }
        return plan.inputs.indices.map { i in
            let found = AnswerSpans.answers(windows: windows[i], logits: logits[i], context: plan.inputs[i].context, options: options)
            var answers = found.answers
            if options.allowNoAnswer { answers.append(Answer(score: found.noAnswer, start: 0, end: 0, answer: "")) }
            // Stable: equal scores keep window order, "no answer" last among them.
            return Array(answers.enumerated().sorted { ($0.element.score, -$0.offset) > ($1.element.score, -$1.offset) }
                .map(\.element).prefix(options.topK))
        }
    }
}

extension Pipeline {
    /// Finds the answer to each question in its context (see `QuestionAnsweringTask`).
    ///
    /// ```swift
    /// let answers = try pipeline.answer([(question: "Where does John live?", context: "John lives in Paris.")])
    /// print(answers[0][0].answer)  // "Paris"
    /// ```
    public func answer(_ inputs: [(question: String, context: String)], options: AnswerOptions = AnswerOptions()) throws -> [[Answer]] {
        try run(try QuestionAnsweringTask(pipeline: self, options: options), inputs.map { QuestionInput(question: $0.question, context: $0.context) })
    }
}
