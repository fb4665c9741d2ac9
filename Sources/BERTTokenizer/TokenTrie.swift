/// The vocabulary as a trie over UTF-8 bytes, so WordPiece finds the longest vocabulary prefix of the rest
/// of a word in one walk (instead of building and hashing every shorter candidate string).
struct TokenTrie: Sendable {
    /// Child of node n for byte b, keyed by n << 8 | b.
    private var children: [Int: Int32] = [:]
    /// Token id ending at each node, or -1.
    private var ids: [Int32] = [-1]

    static let root: Int32 = 0

    init(_ tokens: ArraySlice<String>) {
        children.reserveCapacity(tokens.count * 6)
        for (id, token) in tokens.enumerated() {
            var node = Self.root
            for byte in token.utf8 { node = child(node, byte) ?? add(node, byte) }
            ids[Int(node)] = Int32(id)
        }
    }

    private mutating func add(_ node: Int32, _ byte: UInt8) -> Int32 {
        let new = Int32(ids.count)
        ids.append(-1)
        children[Int(node) << 8 | Int(byte)] = new
        return new
    }

    @inline(__always)
    func child(_ node: Int32, _ byte: UInt8) -> Int32? {
        children[Int(node) << 8 | Int(byte)]
    }

    /// The node reached by walking `text`'s bytes from the root (e.g. the "##" prefix), if any.
    func node(after text: String) -> Int32? {
        var node = Self.root
        for byte in text.utf8 {
            guard let next = child(node, byte) else { return nil }
            node = next
        }
        return node
    }

    /// The longest run word[start..<end] whose bytes, appended to the path to `from`, spell a token:
    /// (token id, end) or nil.
    func longestMatch(from: Int32, _ word: ArraySlice<Unicode.Scalar>, start: Int) -> (id: Int, end: Int)? {
        var node = from
        var best: (id: Int, end: Int)?
        var i = start
        scalars: while i < word.endIndex {
            for byte in word[i].utf8 {
                guard let next = child(node, byte) else { break scalars }
                node = next
            }
            i += 1
            let id = ids[Int(node)]
            if id >= 0 { best = (Int(id), i) }
        }
        return best
    }
}
