/// Greedy longest-match-first WordPiece (`tokenizers`' `WordPiece` model): a word becomes the longest
/// vocabulary prefix, then `##`-prefixed continuations; a word with no split, or longer than
/// `maxInputCharactersPerWord`, becomes the unknown token as a whole.
struct WordPiece: Sendable {
    let vocabulary: Vocabulary
    let unknownID: Int
    var continuingPrefix = "##"
    var maxInputCharactersPerWord = 100

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
            var end = word.endIndex
            var found: Int?
            while start < end {
                var candidate: [UInt8] = start > base ? Array(continuingPrefix.utf8) : []
                for c in word[start..<end] { candidate.append(contentsOf: c.utf8) }
                if let id = vocabulary.id(utf8: candidate) {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else { return [Piece(id: unknownID, range: base..<word.endIndex)] }
            pieces.append(Piece(id: id, range: start..<end))
            start = end
        }
        return pieces
    }
}
