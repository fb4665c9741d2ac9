import Foundation

/// A parsed JSON document, for headers and configs whose keys are not known in advance.
public enum JSONValue: Codable, Equatable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Decodes any JSON value (for use inside `Codable` types); `parse` reads JSON bytes directly.
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// Encodes the value as it was parsed (a whole number as an integer, so an id like 42 stays 42, not 42.0).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): if let i = int { try c.encode(i) } else { try c.encode(d) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses JSON bytes (RFC 8259, as Python's `json` reads them: a repeated key keeps its last value).
    /// - Throws: `JSONParseError` saying what is wrong and at which byte: invalid UTF-8, a lone UTF-16
    ///   surrogate escape (which no text can hold), nesting deeper than `JSONParser.maxDepth`, bad syntax.
    public static func parse(_ data: Data) throws -> JSONValue {
        try data.withUnsafeBytes { raw in
            var parser = JSONParser(bytes: raw)
            return try parser.document()
        }
    }

    /// The value as an exact integer, if it is a number without a fractional part (and not a bool).
    public var int: Int? {
        guard case .number(let d) = self, d.rounded() == d, abs(d) <= 9_007_199_254_740_992 else { return nil }
        return Int(d)
    }

    /// The number, if it is one.
    public var double: Double? {
        if case .number(let d) = self { return d }
        return nil
    }

    /// The string, if it is one.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The boolean, if it is one.
    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements, if it is an array.
    public var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members, if it is an object.
    public var object: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The member `key` of an object.
    public subscript(key: String) -> JSONValue? { object?[key] }

    /// Compact JSON text (cut off after 200 characters), for messages.
    public var description: String {
        var text: String
        switch self {
        case .null: text = "null"
        case .bool(let b): text = b ? "true" : "false"
        case .number(let d): text = int.map(String.init) ?? "\(d)"
        case .string(let s): text = "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .array(let a): text = "[" + a.prefix(20).map(\.description).joined(separator: ", ") + (a.count > 20 ? ", …" : "") + "]"
        case .object(let o):
            text = "{" + o.sorted { $0.key < $1.key }.prefix(20).map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
                + (o.count > 20 ? ", …" : "") + "}"
        }
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}
