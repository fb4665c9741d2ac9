/// Greedy longest-match-first WordPiece (`tokenizers`' `WordPiece` model): a word becomes the longest
/// vocabulary prefix, then `##`-prefixed continuations; a word with no split, or longer than
/// `maxInputCharactersPerWord`, becomes the unknown token as a whole.
struct WordPiece: Sendable {
    let unknownID: Int
    let continuingPrefix: String
    let maxInputCharactersPerWord: Int
    let trie: TokenTrie
    /// Where continuations start in the trie (after "##"); nil when no token has the prefix.
    let continuationNode: Int32?

    /// Only the first `modelVocabularyCount` tokens are WordPiece's (later ones were added on top).
    init(vocabulary: Vocabulary, unknownID: Int, continuingPrefix: String = "##", maxInputCharactersPerWord: Int = 100,
         modelVocabularyCount: Int? = nil) {
        self.unknownID = unknownID
        self.continuingPrefix = continuingPrefix
        self.maxInputCharactersPerWord = maxInputCharactersPerWord
        trie = TokenTrie(vocabulary.tokens.prefix(modelVocabularyCount ?? vocabulary.count))
        continuationNode = trie.node(after: continuingPrefix)
    }

    /// One piece: its id and the scalar range of the word it covers.
    struct Piece: Equatable {
        var id: Int
        var range: Range<Int>
    }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>) -> [Piece] {
        let base = word.startIndex
        if word.count > maxInputCharactersPerWord { return [Piece(id: unknownID, range: base..<word.endIndex)] }
        var pieces: [Piece] = []
        var start = base
        while start < word.endIndex {
            let from = start > base ? continuationNode : TokenTrie.root
            guard let from, let match = trie.longestMatch(from: from, word, start: start) else {
                return [Piece(id: unknownID, range: base..<word.endIndex)]
            }
            pieces.append(Piece(id: match.id, range: start..<match.end))
            start = match.end
        }
        return pieces
    }
}
