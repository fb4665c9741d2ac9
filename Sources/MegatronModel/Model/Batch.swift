import Foundation
import TensorFiles

/// Token ids for one forward pass, as Hugging Face models take them: `input_ids` (B, S), and optionally
/// `attention_mask` (1 = token, 0 = padding; default all ones) and `token_type_ids` (default zeros).
/// A multiple-choice batch is (B, C, S); it is stored flattened to (B·C, S) with `numChoices` = C.
///
/// ```swift
/// let batch = Batch(inputIDs: [[101, 7592, 102]])
/// let outputs = try model.forward(batch)
/// ```
public struct Batch: Sendable, Equatable {
    public var inputIDs: [[Int]]
    public var attentionMask: [[Int]]?
    public var tokenTypeIDs: [[Int]]?
    /// Choices per example when the batch came as (B, C, S); nil for an ordinary (B, S) batch.
    public var numChoices: Int?

    /// A batch of (B, S) ids (or (B·C, S) with `numChoices` = C); mask and types default to ones and zeros.
    public init(inputIDs: [[Int]], attentionMask: [[Int]]? = nil, tokenTypeIDs: [[Int]]? = nil, numChoices: Int? = nil) {
        self.inputIDs = inputIDs
        self.attentionMask = attentionMask
        self.tokenTypeIDs = tokenTypeIDs
        self.numChoices = numChoices
    }

    /// Parses `{"input_ids": [[…]], "attention_mask": [[…]], "token_type_ids": [[…]]}` (the last two optional;
    /// arrays of rank 2, or rank 3 for multiple choice).
    public init(json data: Data) throws {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch { throw ModelError("batch: not valid JSON: \(error)") }
        guard root.object != nil else { throw ModelError("batch: expected a JSON object with \"input_ids\"") }
        guard let ids = root["input_ids"] else { throw ModelError("batch: missing \"input_ids\"") }
        let (inputIDs, choices) = try Self.rows(ids, name: "input_ids")
        self.inputIDs = inputIDs
        numChoices = choices
        for key in ["attention_mask", "token_type_ids"] {
            guard let value = root[key], value != .null else { continue }
            let (rows, c) = try Self.rows(value, name: key)
            guard c == choices, rows.count == inputIDs.count, zip(rows, inputIDs).allSatisfy({ $0.count == $1.count }) else {
                throw ModelError("batch: \(key) must have the same shape as input_ids")
            }
            if key == "attention_mask" { attentionMask = rows } else { tokenTypeIDs = rows }
        }
        let known: Set<String> = ["input_ids", "attention_mask", "token_type_ids"]
        if let extra = root.object?.keys.first(where: { !known.contains($0) }) {
            throw ModelError("batch: unknown key \"\(extra)\" (expected input_ids, attention_mask, token_type_ids)")
        }
    }

    /// Rank-2 rows, or rank-3 flattened with the choice count.
    private static func rows(_ value: JSONValue, name: String) throws -> ([[Int]], Int?) {
        guard let outer = value.array, !outer.isEmpty else {
            throw ModelError("batch: \(name) must be a non-empty array of arrays of integers")
        }
        func row(_ v: JSONValue) throws -> [Int] {
            guard let items = v.array else { throw ModelError("batch: \(name) must be an array of arrays of integers") }
            return try items.map {
                guard let i = $0.int else { throw ModelError("batch: \(name) holds \($0), not an integer") }
                return i
            }
        }
        if outer[0].array?.first?.array != nil {
            var flat: [[Int]] = []
            var choices: Int?
            for example in outer {
                guard let inner = example.array else { throw ModelError("batch: \(name) mixes ranks") }
                if let c = choices, c != inner.count { throw ModelError("batch: \(name) has examples with different numbers of choices") }
                choices = inner.count
                flat += try inner.map(row)
            }
            return (flat, choices)
        }
        return (try outer.map(row), nil)
    }

    /// Checks shapes and ranges against a config; the error says what to change.
    func validate(against config: BertConfig) throws {
        guard let first = inputIDs.first, !first.isEmpty else {
            throw ModelError("input_ids is empty: give at least one sequence of at least one token")
        }
        let s = first.count
        guard inputIDs.allSatisfy({ $0.count == s }) else {
            throw ModelError("input_ids rows have different lengths: pad every sequence to the same length and set attention_mask to 0 on the padding")
        }
        guard s <= config.maxPositionEmbeddings else {
            throw ModelError("sequence length \(s) exceeds max_position_embeddings \(config.maxPositionEmbeddings): truncate the input (or split it into windows)")
        }
        for (name, rows, limit) in [("input_ids", inputIDs, config.vocabSize), ("token_type_ids", tokenTypeIDs ?? [], config.typeVocabSize)] {
            for (i, r) in rows.enumerated() {
                if let bad = r.first(where: { $0 < 0 || $0 >= limit }) {
                    throw ModelError("\(name)[\(i)] holds \(bad), outside 0..<\(limit) (the model's \(name == "input_ids" ? "vocab_size" : "type_vocab_size"))")
                }
            }
        }
        for (name, rows) in [("attention_mask", attentionMask), ("token_type_ids", tokenTypeIDs)] {
            guard let rows else { continue }
            guard rows.count == inputIDs.count, rows.allSatisfy({ $0.count == s }) else {
                throw ModelError("\(name) must have the same shape as input_ids (\(inputIDs.count) x \(s))")
            }
        }
        if let mask = attentionMask, let bad = mask.joined().first(where: { $0 != 0 && $0 != 1 }) {
            throw ModelError("attention_mask holds \(bad); it must be 0 (padding) or 1 (token)")
        }
        if let c = numChoices, c < 1 || inputIDs.count % c != 0 {
            throw ModelError("numChoices \(c) does not divide the \(inputIDs.count) rows")
        }
    }
}
