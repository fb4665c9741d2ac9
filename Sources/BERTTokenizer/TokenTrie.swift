/// The vocabulary as a trie over UTF-8 bytes, so WordPiece finds the longest vocabulary prefix of the rest
/// of a word in one walk (instead of building and hashing every shorter candidate string).
struct TokenTrie: Sendable {
    /// Child of node n for byte b, keyed by (n << 8 | b) + 1 in an open-addressing table (0 = empty slot):
    /// a multiplicative hash, no per-lookup seeding as Swift's Dictionary does.
    private var keys: [UInt64]
    private var values: [Int32]
    private let shift: UInt64
    /// Token id ending at each node, or -1.
    private var ids: [Int32] = [-1]

    static let root: Int32 = 0

    init(_ tokens: ArraySlice<String>) {
        let edges = tokens.reduce(0) { $0 + $1.utf8.count }
        var capacity = 1024
        while capacity < edges * 2 { capacity <<= 1 }
        keys = [UInt64](repeating: 0, count: capacity)
        values = [Int32](repeating: 0, count: capacity)
        shift = UInt64(64 - capacity.trailingZeroBitCount)
        for (id, token) in tokens.enumerated() {
            var node = Self.root
            for byte in token.utf8 { node = child(node, byte) ?? add(node, byte) }
            ids[Int(node)] = Int32(id)
        }
    }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int { Int((key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    private mutating func add(_ node: Int32, _ byte: UInt8) -> Int32 {
        let new = Int32(ids.count)
        ids.append(-1)
        let key = (UInt64(node) << 8 | UInt64(byte)) + 1
        var i = slot(key)
        while keys[i] != 0 { i = (i + 1) & (keys.count - 1) }
        keys[i] = key
        values[i] = new
        return new
    }

    @inline(__always)
    func child(_ node: Int32, _ byte: UInt8) -> Int32? {
        let key = (UInt64(node) << 8 | UInt64(byte)) + 1
        var i = slot(key)
        while true {
            let k = keys[i]
            if k == key { return values[i] }
            if k == 0 { return nil }
            i = (i + 1) & (keys.count - 1)
        }
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
