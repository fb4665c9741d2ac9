import Foundation

/// A token matched whole in the raw text before normalisation (tokenizer.json's `added_tokens` with
/// `normalized: false`); `special` ones are dropped by `decode(skipSpecialTokens: true)`.
public struct AddedToken: Sendable, Equatable {
    public var content: String
    public var special: Bool
    public init(content: String, special: Bool) {
        self.content = content
        self.special = special
    }
}

/// BERT's WordPiece tokenizer with Hugging Face's semantics (`BertTokenizerFast`): special tokens kept
/// whole, BERT normalisation, whitespace and punctuation splitting, WordPiece, `[CLS] A [SEP] B [SEP]`.
///
/// ```swift
/// let tokenizer = try BERTTokenizer(vocabulary: Vocabulary(path: "vocab.txt"))
/// let encoding = try tokenizer.encode("The capital of France is [MASK].")
/// print(encoding.tokens)  // ["[CLS]", "The", "capital", "of", "France", "is", "[MASK]", ".", "[SEP]"]
/// ```
public struct BERTTokenizer: Sendable {
    public let vocabulary: Vocabulary
    public let unknownToken: String, classToken: String, separatorToken: String, padToken: String, maskToken: String
    let normalizer: Normalizer
    let wordPiece: WordPiece
    /// The special and added tokens recognised whole inside text, as scalars, longest first.
    let wholeTokens: [(scalars: [Unicode.Scalar], id: Int, token: String)]
    /// The distinct first scalars of `wholeTokens` (a quick test before trying them; few, so an array).
    let wholeTokenStarts: [Unicode.Scalar]
    /// Ids `decode(skipSpecialTokens: true)` leaves out.
    let specialIDs: Set<Int>
    let classID: Int, separatorID: Int, padID: Int
    /// The longest input the model takes (`model_max_length`), when the tokenizer files say.
    public var modelMaxLength: Int?

    /// - Parameters:
    ///   - doLowerCase: lowercase the text (false for the cased Megatron-BERT vocabulary).
    ///   - stripAccents: remove accents; nil means "when lowercasing", as BERT does.
    ///   - tokenizeChineseCharacters: make each CJK ideograph a word of its own.
    ///   - addedTokens: more tokens to match whole in raw text (they must be in `vocabulary`).
    ///   - modelVocabularyCount: how many of `vocabulary`'s tokens are WordPiece's own; the rest (added
    ///     tokens appended after them) are only ever matched whole.
    public init(vocabulary: Vocabulary, doLowerCase: Bool = false, stripAccents: Bool? = nil,
                tokenizeChineseCharacters: Bool = true, unknownToken: String = "[UNK]", classToken: String = "[CLS]",
                separatorToken: String = "[SEP]", padToken: String = "[PAD]", maskToken: String = "[MASK]",
                continuingPrefix: String = "##", maxInputCharactersPerWord: Int = 100,
                addedTokens: [AddedToken] = [], modelVocabularyCount: Int? = nil) throws {
        func id(_ token: String, _ role: String) throws -> Int {
            guard let id = vocabulary.id(of: token) else {
                throw TokenizerError("the vocabulary has no \(role) token \"\(token)\"; BERT vocabularies hold [PAD], [UNK], [CLS], [SEP] and [MASK]")
            }
            return id
        }
        self.vocabulary = vocabulary
        self.unknownToken = unknownToken
        self.classToken = classToken
        self.separatorToken = separatorToken
        self.padToken = padToken
        self.maskToken = maskToken
        let unknownID = try id(unknownToken, "unknown")
        classID = try id(classToken, "classification")
        separatorID = try id(separatorToken, "separator")
        padID = try id(padToken, "padding")
        normalizer = Normalizer(cleanText: true, handleChineseCharacters: tokenizeChineseCharacters,
                                stripAccents: stripAccents ?? doLowerCase, lowercase: doLowerCase)
        var specials = [unknownToken, classToken, separatorToken, padToken]
        if vocabulary.id(of: maskToken) != nil { specials.append(maskToken) }
        var whole = try specials.map { (Array($0.unicodeScalars), try id($0, "special"), $0) }
        var special = Set(whole.map(\.1))
        for added in addedTokens where !specials.contains(added.content) {
            guard !added.content.isEmpty else { throw TokenizerError("an added token is empty") }
            whole.append((Array(added.content.unicodeScalars), try id(added.content, "added"), added.content))
            if added.special { special.insert(whole[whole.count - 1].1) }
        }
        wholeTokens = whole.sorted { $0.0.count > $1.0.count }
        wholeTokenStarts = Array(Set(whole.map { $0.0[0] }))
        specialIDs = special
        // Tokens appended after the model's vocabulary are matched whole, never produced by WordPiece.
        wordPiece = WordPiece(vocabulary: vocabulary, unknownID: unknownID, continuingPrefix: continuingPrefix,
                              maxInputCharactersPerWord: maxInputCharactersPerWord,
                              modelVocabularyCount: modelVocabularyCount ?? vocabulary.count)
    }

    /// The ids `decode(skipSpecialTokens: true)` leaves out: [PAD], [UNK], [CLS], [SEP], [MASK] and special added tokens.
    public var specialTokenIDs: Set<Int> { specialIDs }
    /// The id of `maskToken`, when the vocabulary has it.
    public var maskTokenID: Int? { vocabulary.id(of: maskToken) }
    /// The id of `padToken`.
    public var padTokenID: Int { padID }
    /// The id of `unknownToken`.
    public var unknownTokenID: Int { wordPiece.unknownID }

    /// Tokens added around the text: 2 for one text ([CLS] … [SEP]), 3 for a pair.
    public func specialTokenCount(pair: Bool) -> Int { pair ? 3 : 2 }

    /// One text's tokens, before special tokens are added around it.
    struct Piece {
        var id: Int
        var range: Range<Int>  // scalars of the original text
        var word: Int
    }

    /// A text's tokens, and where each of its scalars starts in UTF-8 (computed once, however many windows).
    struct TextPieces {
        var pieces: [Piece]
        /// `utf8Before[k]`: the UTF-8 bytes before scalar k; one more entry than the text has scalars.
        var utf8Before: [Int]
    }

    func pieces(_ text: String) -> TextPieces {
        let input = Array(text.unicodeScalars)
        var collector = PieceCollector()
        var normalized: [Unicode.Scalar] = [], origin: [Int] = []
        var segmentStart = 0
        var i = 0
        while i <= input.count {
            let special = i < input.count && wholeTokenStarts.contains(input[i])
                ? wholeTokens.first(where: { matches($0.scalars, input, at: i) }) : nil
            guard i == input.count || special != nil else {
                i += 1
                continue
            }
            // The text before a whole token (or the end): normalise, split, WordPiece.
            if segmentStart < i {
                normalized.removeAll(keepingCapacity: true)
                origin.removeAll(keepingCapacity: true)
                normalizer.normalize(input, segmentStart..<i, into: &normalized, origin: &origin)
                var wordStart = 0
                for k in 0..<normalized.count {
                    let kind = CharacterClasses.of(normalized[k])
                    if kind.contains(.whitespace) {
                        collector.add(wordPiece, normalized, origin, wordStart..<k)
                        wordStart = k + 1
                    } else if kind.contains(.punctuation) {
                        collector.add(wordPiece, normalized, origin, wordStart..<k)
                        collector.add(wordPiece, normalized, origin, k..<(k + 1))
                        wordStart = k + 1
                    }
                }
                collector.add(wordPiece, normalized, origin, wordStart..<normalized.count)
            }
            guard let special else { break }
            collector.pieces.append(Piece(id: special.id, range: i..<(i + special.scalars.count), word: collector.word))
            collector.word += 1
            i += special.scalars.count
            segmentStart = i
        }
        var utf8Before = [Int](repeating: 0, count: input.count + 1)
        for (k, c) in input.enumerated() { utf8Before[k + 1] = utf8Before[k] + UTF8.width(c) }
        return TextPieces(pieces: collector.pieces, utf8Before: utf8Before)
    }

    /// Gathers one text's pieces, numbering words as it goes.
    private struct PieceCollector {
        var pieces: [Piece] = []
        var word = 0

        /// WordPiece on normalized[range] (one word), mapped back to original scalar ranges.
        mutating func add(_ wordPiece: WordPiece, _ normalized: [Unicode.Scalar], _ origin: [Int], _ range: Range<Int>) {
            guard !range.isEmpty else { return }
            for p in wordPiece.tokenize(normalized[range]) {
                pieces.append(Piece(id: p.id, range: origin[p.range.lowerBound]..<(origin[p.range.upperBound - 1] + 1), word: word))
            }
            word += 1
        }
    }

    private func matches(_ token: [Unicode.Scalar], _ input: [Unicode.Scalar], at i: Int) -> Bool {
        guard i + token.count <= input.count else { return false }
        for (k, c) in token.enumerated() where input[i + k] != c { return false }
        return true
    }

    /// Encodes one text, or a pair, as `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]`.
    ///
    /// - Parameters:
    ///   - maxLength: the most tokens, special tokens included; nil for no limit.
    ///   - truncation: how a text or pair over `maxLength` is cut (Hugging Face's rules, exactly).
    /// - Throws: when `maxLength` cannot hold even the special tokens, or when the input is over
    ///   `maxLength` and `truncation` cannot make it fit.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil,
                       truncation: TruncationStrategy = .longestFirst) throws -> Encoding {
        let first = pieces(text)
        let second = pair.map(pieces)
        let plan = try Truncation(first: first.pieces.count, second: second?.pieces.count, maxLength: maxLength,
                                  strategy: truncation, stride: 0, overflow: false)
        return assemble(first, plan.windows[0].first, second, plan.windows[0].second)
    }

    /// Encodes a text (or pair) that may be longer than `maxLength` as overlapping windows, the way
    /// Hugging Face's `return_overflowing_tokens=True, stride=…` does: the first window is `encode`'s
    /// truncated result, and each text cut by `truncation` goes on in windows that start `stride` tokens before
    /// the previous one ended. Of a pair cut with `only_second` (the context of question answering) the second
    /// text is windowed and the first repeated in every window; with `longest_first` both may be, and the
    /// windows combine as HF combines them.
    ///
    /// ```swift
    /// let windows = try tokenizer.encodeWindows("Who?", pair: longContext, maxLength: 384, stride: 128, truncation: .onlySecond)
    /// ```
    /// - Throws: when `stride` is not smaller than what a text keeps in a window, or the input cannot fit.
    public func encodeWindows(_ text: String, pair: String? = nil, maxLength: Int, stride: Int = 0,
                              truncation: TruncationStrategy = .longestFirst) throws -> [Encoding] {
        let first = pieces(text)
        let second = pair.map(pieces)
        let plan = try Truncation(first: first.pieces.count, second: second?.pieces.count, maxLength: maxLength,
                                  strategy: truncation, stride: stride, overflow: true)
        return plan.windows.map { assemble(first, $0.first, second, $0.second) }
    }

    /// `[CLS] A[r1] [SEP] (B[r2] [SEP])`.
    func assemble(_ first: TextPieces, _ r1: Range<Int>, _ second: TextPieces?, _ r2: Range<Int>) -> Encoding {
        var encoding = Encoding()
        encoding.reserve(r1.count + r2.count + 3)
        encoding.appendSpecial(id: classID, token: classToken, type: 0)
        encoding.appendPieces(first, r1, sequence: 0, vocabulary: vocabulary)
        encoding.appendSpecial(id: separatorID, token: separatorToken, type: 0)
        if let second {
            encoding.appendPieces(second, r2, sequence: 1, vocabulary: vocabulary)
            encoding.appendSpecial(id: separatorID, token: separatorToken, type: 1)
        }
        return encoding
    }

    /// Pads encodings on the right to the longest one (or to `length`, or up to a multiple of `multiple`).
    public func pad(_ encodings: [Encoding], to length: Int? = nil, multiple: Int? = nil) -> [Encoding] {
        var target = length ?? encodings.map(\.count).max() ?? 0
        if let multiple, multiple > 0, target % multiple != 0 { target += multiple - target % multiple }
        return encodings.map {
            var e = $0
            e.pad(to: target, id: padID, token: padToken)
            return e
        }
    }
}
