/// A DEFLATE (RFC 1951) decoder for zip entries: stored, fixed-Huffman and dynamic-Huffman blocks.
/// Output is bounded by the size the zip directory declares, so a zip bomb is an error, not an
/// allocation; every back-reference is checked against what has been produced.
struct Inflate {
    private let input: UnsafeRawBufferPointer
    private var position = 0  // next byte
    private var bitBuffer: UInt64 = 0
    private var bitCount = 0
    private let output: UnsafeMutableRawBufferPointer
    private var produced = 0
    private let path: String

    /// Decodes `input` into `output`, which must be filled exactly.
    static func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, path: String) throws {
        var inflate = Inflate(input: input, output: output, path: path)
        try inflate.run()
    }

    private init(input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer, path: String) {
        self.input = input
        self.output = output
        self.path = path
    }

    private func fail(_ reason: String) -> TensorFileError { TensorFileError(path: path, "deflate: \(reason)") }

    private mutating func run() throws {
        var last = false
        while !last {
            last = try bits(1) == 1
            switch try bits(2) {
            case 0: try storedBlock()
            case 1: try huffmanBlock(Self.fixedLiterals, Self.fixedDistances)
            case 2:
                let (literals, distances) = try dynamicTables()
                try huffmanBlock(literals, distances)
            default: throw fail("invalid block type 3")
            }
        }
        guard produced == output.count else {
            throw fail("the data ends after \(produced) bytes, but the zip directory declares \(output.count)")
        }
    }

    // MARK: Bits

    private mutating func bits(_ n: Int) throws -> Int {
        while bitCount < n {
            guard position < input.count else { throw fail("truncated compressed data") }
            bitBuffer |= UInt64(input[position]) << UInt64(bitCount)
            position += 1
            bitCount += 8
        }
        let value = Int(bitBuffer & ((1 << UInt64(n)) - 1))
        bitBuffer >>= UInt64(n)
        bitCount -= n
        return value
    }

    private mutating func emit(_ byte: UInt8) throws {
        guard produced < output.count else {
            throw fail("more data than the zip directory declares (\(output.count) bytes): corrupt or a zip bomb")
        }
        output[produced] = byte
        produced += 1
    }

    // MARK: Blocks

    private mutating func storedBlock() throws {
        bitBuffer = 0  // drop to the byte boundary
        bitCount = 0
        guard position + 4 <= input.count else { throw fail("truncated stored block header") }
        let length = Int(input[position]) | Int(input[position + 1]) << 8
        let check = Int(input[position + 2]) | Int(input[position + 3]) << 8
        position += 4
        guard length == ~check & 0xffff else { throw fail("stored block length check failed") }
        guard position + length <= input.count else { throw fail("truncated stored block") }
        guard produced + length <= output.count else {
            throw fail("more data than the zip directory declares (\(output.count) bytes): corrupt or a zip bomb")
        }
        output.baseAddress!.advanced(by: produced).copyMemory(from: input.baseAddress!.advanced(by: position), byteCount: length)
        produced += length
        position += length
    }

    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                             131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
                               2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    private mutating func huffmanBlock(_ literals: Huffman, _ distances: Huffman) throws {
        while true {
            let symbol = try decode(literals)
            if symbol < 256 {
                try emit(UInt8(symbol))
                continue
            }
            if symbol == 256 { return }
            let index = symbol - 257
            guard index < Self.lengthBase.count else { throw fail("invalid length symbol \(symbol)") }
            let length = Self.lengthBase[index] + (try bits(Self.lengthExtra[index]))
            let d = try decode(distances)
            guard d < Self.distanceBase.count else { throw fail("invalid distance symbol \(d)") }
            let distance = Self.distanceBase[d] + (try bits(Self.distanceExtra[d]))
            guard distance <= produced else { throw fail("a back-reference reaches before the start of the data") }
            for _ in 0..<length { try emit(output[produced - distance]) }
        }
    }

    private mutating func dynamicTables() throws -> (Huffman, Huffman) {
        let literalCount = try bits(5) + 257, distanceCount = try bits(5) + 1, codeLengthCount = try bits(4) + 4
        guard literalCount <= 286, distanceCount <= 30 else { throw fail("too many codes in a dynamic block") }
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        var codeLengths = [Int](repeating: 0, count: 19)
        for i in 0..<codeLengthCount { codeLengths[order[i]] = try bits(3) }
        let codeLengthCode = try Huffman.validated(lengths: codeLengths, path: path)
        var lengths: [Int] = []
        while lengths.count < literalCount + distanceCount {
            let symbol = try decode(codeLengthCode)
            switch symbol {
            case 0...15: lengths.append(symbol)
            case 16:
                guard let previous = lengths.last else { throw fail("a repeat code with nothing to repeat") }
                lengths += Array(repeating: previous, count: 3 + (try bits(2)))
            case 17: lengths += Array(repeating: 0, count: 3 + (try bits(3)))
            default: lengths += Array(repeating: 0, count: 11 + (try bits(7)))
            }
        }
        guard lengths.count == literalCount + distanceCount else { throw fail("code lengths overrun their tables") }
        guard lengths[256] > 0 else { throw fail("a dynamic block without an end-of-block code") }
        return (try Huffman.validated(lengths: Array(lengths[0..<literalCount]), path: path),
                try Huffman.validated(lengths: Array(lengths[literalCount...]), path: path))
    }

    /// Makes at least `n` bits available when the input has them (fewer at its very end).
    @inline(__always)
    private mutating func refill(_ n: Int) {
        while bitCount < n && position < input.count {
            bitBuffer |= UInt64(input[position]) << UInt64(bitCount)
            position += 1
            bitCount += 8
        }
    }

    /// Canonical Huffman decoding: codes up to `Huffman.fastBits` long through a table indexed by the next
    /// bits, longer ones one bit at a time (codes of each length are consecutive integers).
    private mutating func decode(_ huffman: Huffman) throws -> Int {
        refill(Huffman.fastBits)
        let entry = huffman.fast[Int(bitBuffer & UInt64((1 << Huffman.fastBits) - 1))]
        let length = Int(entry & 0xf)
        if length > 0 && length <= bitCount {
            bitBuffer >>= UInt64(length)
            bitCount -= length
            return Int(entry >> 4)
        }
        var code = 0, first = 0, index = 0
        for length in 1...15 {
            code |= try bits(1)
            let count = huffman.counts[length]
            if code - first < count { return huffman.symbols[index + code - first] }
            index += count
            first = (first + count) << 1
            code <<= 1
        }
        throw fail("an invalid Huffman code")
    }

    static let fixedLiterals = Huffman(lengths: (0..<288).map { $0 < 144 ? 8 : $0 < 256 ? 9 : $0 < 280 ? 7 : 8 })
    static let fixedDistances = Huffman(lengths: Array(repeating: 5, count: 30))
}

/// Code counts per length and symbols in canonical order, plus a table for the short codes.
struct Huffman {
    var counts = [Int](repeating: 0, count: 16)
    var symbols: [Int] = []
    /// Indexed by the next `fastBits` bits of the stream (least significant first): symbol << 4 | code length,
    /// or 0 when the code is longer.
    static let fastBits = 9
    var fast = [UInt32](repeating: 0, count: 1 << fastBits)

    /// Lengths read from a stream: each 0...15, and not over-subscribed.
    static func validated(lengths: [Int], path: String) throws -> Huffman {
        let code = Huffman(lengths: lengths)
        var left = 1
        for length in 1...15 {
            left = (left << 1) - code.counts[length]
            guard left >= 0 else { throw TensorFileError(path: path, "deflate: an over-subscribed Huffman code") }
        }
        return code
    }

    /// Lengths must be 0...15 (the decoder's callers guarantee it).
    init(lengths: [Int]) {
        for length in lengths { counts[length] += 1 }
        counts[0] = 0
        var offsets = [Int](repeating: 0, count: 16)
        for length in 1..<15 { offsets[length + 1] = offsets[length] + counts[length] }
        symbols = [Int](repeating: 0, count: lengths.count)
        for (symbol, length) in lengths.enumerated() where length > 0 {
            symbols[offsets[length]] = symbol
            offsets[length] += 1
        }
        // Canonical codes: the first code of each length follows the last of the previous length.
        var next = [Int](repeating: 0, count: 16)
        var code = 0
        for length in 1...15 {
            code = (code + counts[length - 1]) << 1
            next[length] = code
        }
        for (symbol, length) in lengths.enumerated() where length > 0 {
            let value = next[length]
            next[length] += 1
            guard length <= Self.fastBits else { continue }
            // The stream sends codes most significant bit first: reverse to index by arrival order.
            var reversed = 0
            for bit in 0..<length where value & (1 << bit) != 0 { reversed |= 1 << (length - 1 - bit) }
            var fill = reversed
            while fill < 1 << Self.fastBits {
                fast[fill] = UInt32(symbol << 4 | length)
                fill += 1 << length
            }
        }
    }
}
