import Foundation

/// A WordPiece vocabulary: one token per line of `vocab.txt`, its id the line number (from 0).
///
/// ```swift
/// let vocab = try Vocabulary(path: "vocab.txt")
/// print(vocab.id(of: "[MASK]")!)  // 103 in BERT's vocabularies
/// ```
public struct Vocabulary: Sendable {
    /// Tokens by id.
    public let tokens: [String]
    /// Ids by the token's exact UTF-8 bytes: Swift's String equality is canonical ("e\u{301}" == "é"),
    /// but a vocabulary tells composed and decomposed forms apart.
    private let ids: [[UInt8]: Int]

    /// Reads `vocab.txt`: UTF-8, one token per line (`\n` or `\r\n`), no duplicates.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError("cannot read the vocabulary \(path)")
        }
        try self.init(data: data, source: path)
    }

    /// Reads vocab.txt bytes (UTF-8, one token per line); `source` names them in errors.
    public init(data: Data, source: String = "vocab.txt") throws {
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError("\(source) is not valid UTF-8; a vocab.txt holds one UTF-8 token per line")
        }
        // Split the bytes: as Characters, "\r\n" is one grapheme and would not split on "\n".
        var lines = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines, source: source)
    }

    /// A vocabulary of these tokens, id = position; duplicates are an error naming both lines.
    public init(tokens: [String], source: String = "vocabulary") throws {
        guard !tokens.isEmpty else { throw TokenizerError("\(source) is empty") }
        var ids: [[UInt8]: Int] = [:]
        ids.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            if let first = ids[Array(token.utf8)] {
                throw TokenizerError("\(source): token \"\(token)\" appears twice (lines \(first + 1) and \(id + 1)); a vocabulary needs each token once")
            }
            ids[Array(token.utf8)] = id
        }
        self.tokens = tokens
        self.ids = ids
    }

    public var count: Int { tokens.count }

    /// The id of exactly this token (byte for byte).
    public func id(of token: String) -> Int? { ids[Array(token.utf8)] }

    func id(utf8 bytes: [UInt8]) -> Int? { ids[bytes] }

    /// The token with this id, nil outside the vocabulary.
    public func token(of id: Int) -> String? { id >= 0 && id < tokens.count ? tokens[id] : nil }

    /// Whether some token other than the bracketed special ones (`[CLS]`, `[unused1]`, …) has an upper-case
    /// letter: a cased vocabulary. An uncased one (BERT's `*-uncased`) was built from lowercased text and has none,
    /// so a tokenizer that does not lowercase would turn every capitalised word into pieces or [UNK].
    public var hasUppercasePieces: Bool {
        tokens.contains { token in
            !(token.hasPrefix("[") && token.hasSuffix("]")) && token.unicodeScalars.contains { $0.properties.isUppercase }
        }
    }
}
