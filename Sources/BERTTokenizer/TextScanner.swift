/// The one pass from a text to its WordPiece tokens, as `tokenizers` does it: special and added tokens matched
/// whole in the raw text, BERT normalisation scalar by scalar, words split at whitespace and punctuation, WordPiece
/// on each word. It streams: it holds the current word and the first `limit` tokens, however long the text, and
/// only counts the tokens after those (so a task that truncates never stores a 50 MB text's tokens).
struct TextScanner {
    private let tokenizer: BERTTokenizer
    private let limit: Int
    private let stopAfter: Int
    /// The first `limit` tokens.
    private(set) var pieces: [BERTTokenizer.Piece] = []
    /// Every token of the text.
    private(set) var count = 0
    private var word = 0
    // The current word, normalised: its scalars and, for each, the raw scalar and UTF-8 bytes it came from.
    private var letters: [Unicode.Scalar] = []
    private var origins: [Int] = []
    private var byteStarts: [Int] = []
    private var byteEnds: [Int] = []
    /// Set once the word is longer than WordPiece looks at: it will be one [UNK], so only its ends are kept.
    private var longWordEnd: (scalar: Int, byte: Int)?
    private var scratch: [Unicode.Scalar] = []

    init(_ tokenizer: BERTTokenizer, limit: Int, stopAfter: Int = .max) {
        self.tokenizer = tokenizer
        self.limit = max(0, limit)
        self.stopAfter = stopAfter
        pieces.reserveCapacity(min(self.limit, 1024))
    }

    mutating func scan(_ text: String) {
        let view = text.unicodeScalars
        var index = view.startIndex
        var position = 0, byte = 0  // of `index`, in scalars and in UTF-8 bytes
        let normalizer = tokenizer.normalizer
        while index != view.endIndex && count < stopAfter {
            let c = view[index]
            if tokenizer.wholeTokenStarts.contains(c),
               let whole = tokenizer.wholeTokens.first(where: { Self.matches($0.scalars, view, at: index) }) {
                endWord()
                let width = whole.scalars.reduce(0) { $0 + UTF8.width($1) }
                emit(id: whole.id, range: position..<(position + whole.scalars.count), bytes: byte..<(byte + width))
                word += 1
                index = view.index(index, offsetBy: whole.scalars.count)
                position += whole.scalars.count
                byte += width
                continue
            }
            let width = UTF8.width(c)
            scratch.removeAll(keepingCapacity: true)
            normalizer.normalize(c, into: &scratch)
            for n in scratch {
                let kind = CharacterClasses.of(n)
                if kind.contains(.whitespace) {
                    endWord()
                } else if kind.contains(.punctuation) {
                    endWord()
                    add(n, origin: position, bytes: byte..<(byte + width))
                    endWord()
                } else {
                    add(n, origin: position, bytes: byte..<(byte + width))
                }
            }
            index = view.index(after: index)
            position += 1
            byte += width
        }
        if count < stopAfter { endWord() }
        count = min(count, stopAfter)
    }

    private static func matches(_ token: [Unicode.Scalar], _ view: String.UnicodeScalarView, at start: String.Index) -> Bool {
        var index = start
        for c in token {
            guard index != view.endIndex, view[index] == c else { return false }
            index = view.index(after: index)
        }
        return true
    }

    /// One normalised scalar of the current word.
    private mutating func add(_ letter: Unicode.Scalar, origin: Int, bytes: Range<Int>) {
        if longWordEnd != nil || (!letters.isEmpty && letters.count >= tokenizer.wordPiece.maxInputCharactersPerWord) {
            longWordEnd = (origin, bytes.upperBound)  // more than WordPiece looks at
        } else {
            letters.append(letter)
            origins.append(origin)
            byteStarts.append(bytes.lowerBound)
            byteEnds.append(bytes.upperBound)
        }
    }

    /// WordPiece on the current word, its tokens mapped back to the raw text.
    private mutating func endWord() {
        guard !letters.isEmpty else { return }
        if longWordEnd != nil || letters.count > tokenizer.wordPiece.maxInputCharactersPerWord {
            let end = longWordEnd ?? (origins[origins.count - 1], byteEnds[byteEnds.count - 1])
            emit(id: tokenizer.wordPiece.unknownID, range: origins[0]..<(end.scalar + 1), bytes: byteStarts[0]..<end.byte)
        } else {
            for p in tokenizer.wordPiece.tokenize(letters[...]) {
                let last = p.range.upperBound - 1
                emit(id: p.id, range: origins[p.range.lowerBound]..<(origins[last] + 1),
                     bytes: byteStarts[p.range.lowerBound]..<byteEnds[last])
            }
        }
        word += 1
        letters.removeAll(keepingCapacity: true)
        origins.removeAll(keepingCapacity: true)
        byteStarts.removeAll(keepingCapacity: true)
        byteEnds.removeAll(keepingCapacity: true)
        longWordEnd = nil
    }

    private mutating func emit(id: Int, range: Range<Int>, bytes: Range<Int>) {
        count += 1
        if pieces.count < limit { pieces.append(BERTTokenizer.Piece(id: id, range: range, bytes: bytes, word: word)) }
    }
}
