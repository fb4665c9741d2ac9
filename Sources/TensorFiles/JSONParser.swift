/// What is wrong with a JSON text, and where.
public struct JSONParseError: Error, CustomStringConvertible, Equatable {
    public var reason: String
    /// The byte (from 0) where the problem was found.
    public var offset: Int
    public var description: String { "\(reason) (at byte \(offset + 1))" }
}

/// A strict JSON reader over bytes, for `JSONValue.parse`: UTF-8 checked as it goes, nesting bounded, every
/// error naming its byte.
struct JSONParser {
    /// Arrays and objects may nest this deep (configs and batches nest a few levels).
    static let maxDepth = 512

    private let bytes: UnsafeRawBufferPointer
    private var i = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func fail(_ reason: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(reason: reason, offset: offset ?? i)
    }

    mutating func document() throws -> JSONValue {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = 3 }  // a UTF-8 byte order mark
        let value = try self.value(depth: 0)
        skipSpace()
        guard i == bytes.count else { throw fail("unexpected text after the JSON value") }
        return value
    }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func value(depth: Int) throws -> JSONValue {
        skipSpace()
        guard i < bytes.count else { throw fail("the JSON text ends where a value should be") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected \(describeByte(bytes[i])) where a value should be")
        }
    }

    private func describeByte(_ b: UInt8) -> String {
        b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x" + String(b, radix: 16)
    }

    private mutating func literal(_ word: String) throws {
        for c in word.utf8 {
            guard i < bytes.count, bytes[i] == c else { throw fail("invalid literal (expected \(word))") }
            i += 1
        }
    }

    private mutating func object(depth: Int) throws -> JSONValue {
        guard depth <= Self.maxDepth else { throw fail("arrays and objects nest deeper than \(Self.maxDepth) levels") }
        i += 1
        var members: [String: JSONValue] = [:]
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("an object key must be a string in double quotes") }
            let key = try string()
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after an object key") }
            i += 1
            members[key] = try value(depth: depth)  // a repeated key keeps its last value, as in Python
            skipSpace()
            guard i < bytes.count else { throw fail("the JSON text ends inside an object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}' in an object, found \(describeByte(bytes[i]))")
        }
    }

    private mutating func array(depth: Int) throws -> JSONValue {
        guard depth <= Self.maxDepth else { throw fail("arrays and objects nest deeper than \(Self.maxDepth) levels") }
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            items.append(try value(depth: depth))
            skipSpace()
            guard i < bytes.count else { throw fail("the JSON text ends inside an array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']' in an array, found \(describeByte(bytes[i]))")
        }
    }

    private mutating func number() throws -> Double {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int {
            let from = i
            while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
            return i - from
        }
        let integer = digits()
        guard integer > 0 else { throw fail("a number needs digits", at: start) }
        guard !(integer > 1 && bytes[start + (bytes[start] == UInt8(ascii: "-") ? 1 : 0)] == UInt8(ascii: "0")) else {
            throw fail("a number may not start with 0", at: start)
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw fail("a number needs digits after '.'", at: start) }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("a number needs digits in its exponent", at: start) }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw fail("the number \(text) is out of range", at: start) }
        return value
    }

    /// A string from its opening quote: escapes decoded, raw UTF-8 validated, control characters refused.
    private mutating func string() throws -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("the JSON text ends inside a string") }
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)  // validated as it was read
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            case 0..<0x20:
                throw fail("a control character (byte 0x\(String(b, radix: 16))) inside a string must be escaped")
            case 0..<0x80:
                out.append(b)
                i += 1
            default:
                try multibyte(into: &out)
            }
        }
    }

    /// One UTF-8 sequence of 2–4 bytes, checked as the standard says (no overlongs, no surrogates, ≤ U+10FFFF).
    private mutating func multibyte(into out: inout [UInt8]) throws {
        let b0 = bytes[i]
        let length: Int, low: UInt8, high: UInt8
        switch b0 {
        case 0xC2...0xDF: (length, low, high) = (2, 0x80, 0xBF)
        case 0xE0: (length, low, high) = (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (length, low, high) = (3, 0x80, 0xBF)
        case 0xED: (length, low, high) = (3, 0x80, 0x9F)
        case 0xF0: (length, low, high) = (4, 0x90, 0xBF)
        case 0xF1...0xF3: (length, low, high) = (4, 0x80, 0xBF)
        case 0xF4: (length, low, high) = (4, 0x80, 0x8F)
        default: throw fail("invalid UTF-8 (byte 0x\(String(b0, radix: 16)))")
        }
        guard i + length <= bytes.count else { throw fail("invalid UTF-8 (a sequence cut short)") }
        for k in 1..<length {
            let b = bytes[i + k]
            let (lo, hi) = k == 1 ? (low, high) : (0x80, 0xBF)
            guard b >= lo, b <= hi else { throw fail("invalid UTF-8 (byte 0x\(String(b, radix: 16)))", at: i + k) }
        }
        out.append(contentsOf: bytes[i..<(i + length)])
        i += length
    }

    private mutating func escape(into out: inout [UInt8]) throws {
        let start = i
        i += 1
        guard i < bytes.count else { throw fail("the JSON text ends inside an escape") }
        let c = bytes[i]
        i += 1
        let simple: [UInt8: UInt8] = [UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F,
                                      UInt8(ascii: "b"): 0x08, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A,
                                      UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09]
        if let byte = simple[c] {
            out.append(byte)
            return
        }
        guard c == UInt8(ascii: "u") else { throw fail("invalid escape \\\(Character(Unicode.Scalar(c)))", at: start) }
        var scalar = try hex4()
        if (0xD800...0xDBFF).contains(scalar) {
            guard i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                throw fail("a lone UTF-16 surrogate \\u\(String(scalar, radix: 16, uppercase: true)) cannot be text (a high surrogate needs a low one after it)", at: start)
            }
            i += 2
            let low = try hex4()
            guard (0xDC00...0xDFFF).contains(low) else {
                throw fail("a lone UTF-16 surrogate \\u\(String(scalar, radix: 16, uppercase: true)) cannot be text (it is followed by \\u\(String(low, radix: 16, uppercase: true)), not a low surrogate)", at: start)
            }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(scalar) {
            throw fail("a lone UTF-16 surrogate \\u\(String(scalar, radix: 16, uppercase: true)) cannot be text", at: start)
        }
        guard let character = Unicode.Scalar(scalar) else { throw fail("\\u\(String(scalar, radix: 16)) is not a Unicode scalar", at: start) }
        out.append(contentsOf: String(Character(character)).utf8)
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("a \\u escape needs four hex digits") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let d = Character(Unicode.Scalar(bytes[i])).hexDigitValue else { throw fail("a \\u escape needs four hex digits") }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }
}
