import BERTTokenizer
import Foundation

/// The question-answering pipeline's post-processing, shared by `QuestionAnsweringTask` and fine-tuning's evaluation:
/// from each window's start and end logits to answers in the context — a softmax over the window's context tokens and
/// [CLS], spans of at most `maxAnswerLength` tokens scored p(start) · p(end), widened to whole words; "no answer"
/// scored p([CLS] start) · p([CLS] end).
///
/// ```swift
/// let windows = try tokenizer.encodeWindows(question, pair: context, maxLength: 384, stride: 128, truncation: .onlySecond)
/// // logits: each window's (start, end), from a model with a MegatronBertForQuestionAnswering head
/// let found = AnswerSpans.answers(windows: windows, logits: logits, context: context, options: AnswerOptions())
/// print(found.answers.first?.answer ?? "", found.noAnswer)
/// ```
public enum AnswerSpans {
    /// One question's answers: each window's `topK` spans, best first over all windows (equal scores in window
    /// order), and the "no answer" score (the lowest over the windows). `logits[i]` holds window i's start and end
    /// logits, one per token.
    public static func answers(windows: [Encoding], logits: [(start: [Float], end: [Float])], context: String,
                               options: AnswerOptions) -> (answers: [Answer], noAnswer: Double) {
        let scalars = Array(context.unicodeScalars)
        var candidates: [Answer] = [], noAnswer = 1e6
        for (window, (start, end)) in zip(windows, logits) {
            let spans = start.withUnsafeBufferPointer { s in
                end.withUnsafeBufferPointer { e in search(window, start: s.baseAddress!, end: e.baseAddress!, options: options) }
            }
            noAnswer = min(noAnswer, spans.noAnswer)
            for span in spans.best {
                let range = characters(of: span.start, span.end, in: window)
                candidates.append(Answer(score: span.score, start: range.lowerBound, end: range.upperBound,
                                         answer: String(String.UnicodeScalarView(scalars[range]))))
            }
        }
        let ranked = candidates.enumerated().sorted { ($0.element.score, -$0.offset) > ($1.element.score, -$1.offset) }.map(\.element)
        return (ranked, noAnswer)
    }

    /// The window's `topK` spans over context tokens, and its "no answer" score.
    static func search(_ window: Encoding, start: UnsafePointer<Float>, end: UnsafePointer<Float>, options: AnswerOptions)
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
    static func characters(of s: Int, _ e: Int, in window: Encoding) -> Range<Int> {
        func wordRange(_ token: Int) -> Range<Int> {
            guard let word = window.wordIDs[token] else { return window.offsets[token] }
            let same = window.ids.indices.filter { window.wordIDs[$0] == word && window.sequenceIDs[$0] == 1 }
            guard let first = same.first, let last = same.last else { return window.offsets[token] }
            return window.offsets[first].lowerBound..<window.offsets[last].upperBound
        }
        return wordRange(s).lowerBound..<max(wordRange(s).lowerBound, wordRange(e).upperBound)
    }
}
