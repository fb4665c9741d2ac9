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

    func pieces(_ text: String) -> (pieces: [Piece], scalars: [Unicode.Scalar]) {
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
        return (collector.pieces, input)
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
    ///   - truncation: how a text or pair over `maxLength` is cut.
    /// - Throws: when `maxLength` cannot hold even the special tokens, or when the input is over
    ///   `maxLength` and `truncation` cannot make it fit.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil,
                       truncation: TruncationStrategy = .longestFirst) throws -> Encoding {
        let first = pieces(text)
        let second = pair.map(pieces)
        var n1 = first.pieces.count, n2 = second?.pieces.count ?? 0
        if let maxLength, truncation != .doNotTruncate {
            let specials = specialTokenCount(pair: second != nil)
            guard maxLength >= specials else {
                throw TokenizerError("max_length \(maxLength) cannot hold the \(specials) special tokens; use at least \(specials + 1)")
            }
            let budget = maxLength - specials
            if n1 + n2 > budget {
                switch truncation {
                case .longestFirst:
                    // One token at a time from the longer text; on a tie from the first, as `tokenizers` does.
                    while n1 + n2 > budget { if n1 >= n2 { n1 -= 1 } else { n2 -= 1 } }
                case .onlyFirst:
                    guard n2 < budget else {
                        throw TokenizerError("only_first truncation cannot fit: the second text alone has \(n2) tokens, over the \(budget) left by max_length \(maxLength)")
                    }
                    n1 = budget - n2
                case .onlySecond:
                    guard second != nil, n1 < budget else {
                        throw TokenizerError("only_second truncation cannot fit: the first text alone has \(n1) tokens, over the \(budget) left by max_length \(maxLength)")
                    }
                    n2 = budget - n1
                case .doNotTruncate:
                    break
                }
            }
        }
        return assemble(first, 0..<n1, second, 0..<n2)
    }

    /// Encodes a text (or pair) that may be longer than `maxLength` as overlapping windows, the way
    /// Hugging Face's `return_overflowing_tokens=True, stride=…` does: the first window is `encode`'s
    /// truncated result, each next one starts `stride` tokens before the previous one ended. A single
    /// text is windowed itself; of a pair, the text `truncation` names (`only_second`: the context of
    /// question answering) is windowed and the other repeated in every window.
    ///
    /// - Throws: when `stride` is not smaller than the room a window leaves, or for `longest_first` pairs.
    public func encodeWindows(_ text: String, pair: String? = nil, maxLength: Int, stride: Int = 0,
                              truncation: TruncationStrategy = .longestFirst) throws -> [Encoding] {
        let first = pieces(text)
        let second = pair.map(pieces)
        let n1 = first.pieces.count, n2 = second?.pieces.count ?? 0
        let specials = specialTokenCount(pair: second != nil)
        guard maxLength > specials else {
            throw TokenizerError("max_length \(maxLength) cannot hold the \(specials) special tokens and any text; use at least \(specials + 1)")
        }
        guard stride >= 0 else { throw TokenizerError("stride must not be negative") }
        if n1 + n2 + specials <= maxLength || truncation == .doNotTruncate {
            return [assemble(first, 0..<n1, second, 0..<n2)]
        }
        let windowSecond: Bool
        switch (truncation, second) {
        case (.longestFirst, nil), (.onlyFirst, _): windowSecond = false
        case (.onlySecond, .some): windowSecond = true
        case (.onlySecond, nil):
            throw TokenizerError("only_second truncation needs a second text")
        case (.longestFirst, .some):
            throw TokenizerError("overflowing windows of a pair need only_first or only_second truncation (which text to window)")
        case (.doNotTruncate, _):
            windowSecond = false
        }
        let fixed = windowSecond ? n1 : n2
        let room = maxLength - specials - fixed
        guard room > 0 else {
            throw TokenizerError("the \(windowSecond ? "first" : "second") text alone has \(fixed) tokens, leaving no room in max_length \(maxLength)")
        }
        guard stride < room else {
            throw TokenizerError("stride \(stride) must be smaller than the \(room) tokens a window holds (max_length \(maxLength) minus the special tokens and the other text)")
        }
        let total = windowSecond ? n2 : n1
        var windows: [Encoding] = []
        var start = 0
        while true {
            let end = min(start + room, total)
            windows.append(windowSecond ? assemble(first, 0..<n1, second, start..<end)
                                        : assemble(first, start..<end, second, 0..<n2))
            if end == total { break }
            start += room - stride
        }
        return windows
    }

    /// `[CLS] A[r1] [SEP] (B[r2] [SEP])`.
    func assemble(_ first: (pieces: [Piece], scalars: [Unicode.Scalar]), _ r1: Range<Int>,
                  _ second: (pieces: [Piece], scalars: [Unicode.Scalar])?, _ r2: Range<Int>) -> Encoding {
        var encoding = Encoding()
        encoding.appendSpecial(id: classID, token: classToken, type: 0)
        encoding.appendPieces(first.pieces[r1], of: first.scalars, sequence: 0, vocabulary: vocabulary)
        encoding.appendSpecial(id: separatorID, token: separatorToken, type: 0)
        if let second {
            encoding.appendPieces(second.pieces[r2], of: second.scalars, sequence: 1, vocabulary: vocabulary)
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
