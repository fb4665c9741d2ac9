import BERTTokenizer

/// Extractive QA's training features as transformers' `run_qa` makes them (`prepare_train_features`, without
/// padding to the maximum length): `[CLS] question [SEP] context [SEP]` windows of at most `maxLength` tokens
/// over the context (only the context cut, neighbouring windows sharing `stride` tokens), and in each window the
/// first answer's start and end token — or [CLS] (0) for both when the window does not hold the whole answer, and
/// for an unanswerable question.
///
/// ```swift
/// let windows = try QuestionFeatures.windows(example, tokenizer: tokenizer, maxLength: 384, stride: 128)
/// windows[0].start  // the answer's first token in window 0, or 0
/// ```
public enum QuestionFeatures {
    /// One window and its answer's token positions.
    public struct Window: Sendable {
        public var encoding: Encoding
        public var start: Int
        public var end: Int
    }

    /// The example's windows (the question stripped of leading whitespace, as run_qa does).
    /// - Throws: `TrainingError` when the question leaves no room for the context in `maxLength` tokens.
    public static func windows(_ example: QuestionExample, tokenizer: BERTTokenizer, maxLength: Int, stride: Int) throws -> [Window] {
        let question = String(example.question.drop { $0.isWhitespace })
        let encodings: [Encoding]
        do {
            encodings = try tokenizer.encodeWindows(question, pair: example.context, maxLength: maxLength, stride: stride,
                                                    truncation: .onlySecond)
        } catch let error as TokenizerError {
            throw TrainingError("\(example.location): the question does not fit in \(maxLength) tokens with its context (doc stride \(stride)): \(error.message); raise --max-length or lower --doc-stride")
        }
        return encodings.map { encoding in
            let (start, end) = positions(of: example.answers.first, in: encoding)
            return Window(encoding: encoding, start: start, end: end)
        }
    }

    /// run_qa's rule: the answer's characters `start..<start + count` mapped to the first and last context tokens
    /// that cover them, when the window's context tokens span the whole answer; else (0, 0).
    static func positions(of answer: QuestionExample.Answer?, in window: Encoding) -> (start: Int, end: Int) {
        guard let answer else { return (0, 0) }
        let startChar = answer.start, endChar = answer.start + answer.text.unicodeScalars.count
        let offsets = window.offsets, sequence = window.sequenceIDs
        guard var first = sequence.firstIndex(of: 1), var last = sequence.lastIndex(of: 1) else { return (0, 0) }
        guard offsets[first].lowerBound <= startChar, offsets[last].upperBound >= endChar else { return (0, 0) }
        while first < offsets.count && offsets[first].lowerBound <= startChar { first += 1 }
        while offsets[last].upperBound >= endChar { last -= 1 }
        return (first - 1, last + 1)
    }
}
