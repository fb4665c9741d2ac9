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
        var candidates = [[(answer: Answer, window: Int, rank: Int)]](repeating: [], count: plan.inputs.count)
        var noAnswer = [Double](repeating: 1e6, count: plan.inputs.count)
        let contexts = plan.inputs.map { Array($0.context.unicodeScalars) }
        for (index, output) in outputs.enumerated() {
            guard case .questionAnswering(let start, let end)? = output.head else {
                throw missingOutput("start and end logits", task: "question answering")
            }
            let window = plan.rows[index].encodings[0], owner = plan.owner[index]
            let spans = start.withUnsafeBufferPointer { s in
                end.withUnsafeBufferPointer { e in pipeline.bestSpans(window, start: s.baseAddress!, end: e.baseAddress!, options: options) }
            }
            if options.allowNoAnswer { noAnswer[owner] = min(noAnswer[owner], spans.noAnswer) }
            for (rank, span) in spans.best.enumerated() {
                let range = pipeline.characters(of: span.start, span.end, in: window)
                let text = String(String.UnicodeScalarView(contexts[owner][range]))
                candidates[owner].append((Answer(score: span.score, start: range.lowerBound, end: range.upperBound, answer: text), index, rank))
            }
        }
        return plan.inputs.indices.map { i in
            var answers = candidates[i].sorted { ($0.window, $0.rank) < ($1.window, $1.rank) }.map(\.answer)
            if options.allowNoAnswer { answers.append(Answer(score: noAnswer[i], start: 0, end: 0, answer: "")) }
            // Stable: equal scores keep window order.
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

    /// The window's `topK` spans over context tokens, and its "no answer" score.
    func bestSpans(_ window: Encoding, start: UnsafePointer<Float>, end: UnsafePointer<Float>, options: AnswerOptions)
        -> (best: [(start: Int, end: Int, score: Double)], noAnswer: Double) {
        let n = window.count
        let allowed = (0..<n).map { $0 == 0 || window.sequenceIDs[$0] == 1 }  // context tokens and [CLS]
        func probabilities(_ logits: UnsafePointer<Float>) -> [Double] {
            var masked = (0..<n).map { allowed[$0] ? Float(logits[$0]) : -10000 }
            return masked.withUnsafeMutableBufferPointer { softmax($0.baseAddress!, count: n) }
        }
        var p = probabilities(start), q = probabilities(end)
        let noAnswer = p[0] * q[0]
        p[0] = 0
        q[0] = 0
        var spans: [(start: Int, end: Int, score: Double)] = []
        for s in 1..<n where allowed[s] {
            for e in s..<min(s + options.maxAnswerLength, n) where allowed[e] {
                spans.append((s, e, p[s] * q[e]))
            }
        }
        let scores = spans.map(\.score)
        let best = topIndices(scores, among: Array(spans.indices), k: min(options.topK, spans.count)).map { spans[$0] }
        return (best, noAnswer)
    }

    /// The characters of tokens `s...e`, widened to the whole words they start and end in (within the window).
    func characters(of s: Int, _ e: Int, in window: Encoding) -> Range<Int> {
        func wordRange(_ token: Int) -> Range<Int> {
            guard let word = window.wordIDs[token] else { return window.offsets[token] }
            let same = window.ids.indices.filter { window.wordIDs[$0] == word && window.sequenceIDs[$0] == 1 }
            guard let first = same.first, let last = same.last else { return window.offsets[token] }
            return window.offsets[first].lowerBound..<window.offsets[last].upperBound
        }
        return wordRange(s).lowerBound..<max(wordRange(s).lowerBound, wordRange(e).upperBound)
    }
}
