import Foundation

/// A token matched whole in the raw text before normalisation (tokenizer.json's `added_tokens` with
/// `normalized: false`); `special` ones are dropped by `decode(skipSpecialTokens: true)`.
public struct AddedToken: Sendable, Equatable {
    public var content: String
    public var special: Bool
    /// An added token: `content` matched whole in raw text; `special` ones are skipped by `decode(skipSpecialTokens:)`.
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

    /// One token of a text, before special tokens are added around it: its id, the scalars and UTF-8 bytes of
    /// the text it came from, and the index of its word.
    struct Piece {
        var id: Int
        var range: Range<Int>
        var bytes: Range<Int>
        var word: Int
    }

    /// A text's first tokens (up to the limit asked for) and how many it has in all.
    struct TextPieces {
        var pieces: [Piece]
        var count: Int
    }

    /// The tokens of `text`: all of them, or the first `limit` (the rest only counted, in constant memory), or
    /// just the first `stopAfter` (then `count` is `stopAfter`, meaning "at least").
    func pieces(_ text: String, limit: Int = .max, stopAfter: Int = .max) -> TextPieces {
        var scanner = TextScanner(self, limit: limit, stopAfter: stopAfter)
        scanner.scan(text)
        return TextPieces(pieces: scanner.pieces, count: scanner.count)
    }

    /// Encodes one text, or a pair, as `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]`.
    ///
    /// - Parameters:
    ///   - maxLength: the most tokens, special tokens included; nil for no limit.
    ///   - truncation: how a text or pair over `maxLength` is cut (Hugging Face's rules, exactly).
    ///   - side: which end of a text is cut (`.left` keeps a long text's end).
    /// - Throws: when `maxLength` cannot hold even the special tokens, or when the input is over
    ///   `maxLength` and `truncation` cannot make it fit.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil,
                       truncation: TruncationStrategy = .longestFirst, side: TruncationSide = .right) throws -> Encoding {
        try encodeTruncating(text, pair: pair, maxLength: maxLength, truncation: truncation, side: side).encoding
    }

    /// The encoding of token ids given as they are (a client that tokenized itself): one sequence, type 0, every
    /// token attended; special tokens marked by id, no text offsets.
    ///
    /// ```swift
    /// let encoding = try tokenizer.encoding(ids: [101, 7592, 102])
    /// ```
    /// - Throws: for an empty list or an id outside the vocabulary.
    public func encoding(ids: [Int]) throws -> Encoding {
        guard !ids.isEmpty else { throw TokenizerError("an input of token ids needs at least one id") }
        var encoding = Encoding()
        encoding.reserve(ids.count)
        for id in ids {
            guard let token = vocabulary.token(of: id) else {
                throw TokenizerError("token id \(id) is not in the vocabulary (0..<\(vocabulary.count))")
            }
            encoding.append(id: id, token: token, type: 0, special: specialIDs.contains(id), offsets: 0..<0, bytes: 0..<0,
                            word: nil, sequence: specialIDs.contains(id) ? nil : 0)
        }
        return encoding
    }

    /// `encode`, and whether it had to cut. Tokenizing stops once a text is past `maxLength`: a text that is cut
    /// costs time and memory for `maxLength` tokens, however long it is. (One case reads further: with
    /// `longest_first`, two texts both past the limit and an odd number of tokens to share, where the longer of
    /// the two gets the odd one; then both are counted to the end, still keeping only what they need. Cutting the
    /// `.left` side reads every text to its end.)
    ///
    /// ```swift
    /// let (encoding, cut) = try tokenizer.encodeTruncating(longText, maxLength: 512, side: .left)  // its last 510 tokens
    /// ```
    public func encodeTruncating(_ text: String, pair: String? = nil, maxLength: Int?,
                                 truncation: TruncationStrategy = .longestFirst,
                                 side: TruncationSide = .right) throws -> (encoding: Encoding, truncated: Bool) {
        // No text keeps more than maxLength tokens, and any count over it decides the same way (cut on the right).
        let limit = truncation == .doNotTruncate || side == .left ? Int.max : maxLength ?? Int.max
        let stop = limit == .max ? limit : limit + 1
        var first = pieces(text, limit: limit, stopAfter: stop)
        var second = pair.map { pieces($0, limit: limit, stopAfter: stop) }
        if let maxLength, truncation == .longestFirst, let both = second, first.count == stop, both.count == stop,
           (maxLength - specialTokenCount(pair: true)) % 2 == 1 {
            first = pieces(text, limit: limit)
            second = pieces(pair ?? "", limit: limit)
        }
        let plan = try Truncation(first: first.count, second: second?.count, maxLength: maxLength,
                                  strategy: truncation, stride: 0, overflow: false)
        var (keep1, keep2) = plan.windows[0]
        if side == .left {
            // The same counts, taken from each text's end (HF's `Encoding::truncate` with direction Left).
            keep1 = (first.count - keep1.count)..<first.count
            keep2 = ((second?.count ?? 0) - keep2.count)..<(second?.count ?? 0)
        }
        return (assemble(first, keep1, second, keep2), keep1.count < first.count || keep2.count < (second?.count ?? 0))
    }

    /// Encodes a sentence given as words (NER data come so), as Hugging Face's tokenizer does with
    /// `is_split_into_words=True`: each word tokenized on its own, `wordIDs` the index of the word each token came
    /// from (nil for [CLS] and [SEP]), `offsets` within that word; a word that yields no token (whitespace, control
    /// characters) has none. Cut on the right to `maxLength` tokens, special tokens included.
    ///
    /// ```swift
    /// let (encoding, cut) = try tokenizer.encodeWords(["Angela", "Merkel", "visited", "Zürich"], maxLength: 128)
    /// encoding.wordIDs  // [nil, 0, 1, 1, 2, 3, 3, nil]: the first piece of each word carries its tag
    /// ```
    /// - Throws: when `maxLength` cannot hold the two special tokens.
    public func encodeWords(_ words: [String], maxLength: Int? = nil) throws -> (encoding: Encoding, truncated: Bool) {
        let text = wordPieces(words)
        let plan = try Truncation(first: text.count, second: nil, maxLength: maxLength, strategy: .longestFirst, stride: 0,
                                  overflow: false)
        let keep = plan.windows[0].first
        return (assemble(text, keep, nil, 0..<0), keep.count < text.count)
    }

    /// `encodeWords` for a sentence longer than `maxLength`: overlapping windows as Hugging Face's tokenizer makes them
    /// with `is_split_into_words=True, return_overflowing_tokens=True, stride=…` — each holding `maxLength` tokens with
    /// [CLS] and [SEP], the next starting `stride` tokens before the previous one ended — and where each window starts
    /// among the sentence's tokens (the first after [CLS] is 0). One window when the sentence fits.
    ///
    /// ```swift
    /// let windows = try tokenizer.encodeWordWindows(longSentence, maxLength: 128, stride: 32)
    /// ```
    /// - Throws: when `stride` is not smaller than what a window holds (`maxLength` − 2).
    public func encodeWordWindows(_ words: [String], maxLength: Int, stride: Int) throws -> [(encoding: Encoding, start: Int)] {
        let text = wordPieces(words)
        let plan = try Truncation(first: text.count, second: nil, maxLength: maxLength, strategy: .longestFirst, stride: stride,
                                  overflow: true)
        return plan.windows.map { (assemble(text, $0.first, nil, 0..<0), $0.first.lowerBound) }
    }

    /// Every word's pieces, each tagged with its word's index.
    func wordPieces(_ words: [String]) -> TextPieces {
        var all: [Piece] = []
        for (index, word) in words.enumerated() {
            all += pieces(word).pieces.map { piece in
                var piece = piece
                piece.word = index
                return piece
            }
        }
        return TextPieces(pieces: all, count: all.count)
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
        let second = pair.map { pieces($0) }
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
