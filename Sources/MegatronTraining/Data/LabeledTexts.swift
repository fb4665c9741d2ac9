import Foundation
import TensorFiles

/// A labelled text (or pair) read from a training or evaluation file, with the line it came from.
public struct LabeledText: Sendable, Equatable {
    /// A label as the file gives it: a class (a string, or an integer written as one), a number (regression), a list of
    /// classes (multi-label).
    public enum Label: Sendable, Equatable {
        case name(String)
        case number(Double)
        case names([String])
    }

    public var text: String
    public var pair: String?
    public var label: Label
    /// Where it is: "FILE:LINE".
    public var location: String
}

/// Reads labelled texts from JSON Lines (`.jsonl`, `.json`), CSV (`.csv`) or TSV (`.tsv`, `.txt`) files: a text column,
/// an optional pair column and a label column, by name (JSON members; the first row of CSV and TSV names the
/// columns). Every mistake is an error naming the file and line: a missing column, a text that is not text, a label
/// of another kind, an empty file.
///
/// ```swift
/// let examples = try LabeledTexts.read("train.csv", columns: .init(text: "sentence", pair: nil, label: "label"))
/// ```
public enum LabeledTexts {
    public struct Columns: Sendable, Equatable {
        public var text: String
        /// The pair's column; read when the file has it (a pair column named but absent from every row is an error).
        public var pair: String?
        public var label: String

        public init(text: String = "text", pair: String? = "text_pair", label: String = "label") {
            self.text = text
            self.pair = pair
            self.label = label
        }
    }

    /// At most this many bytes are read from one file (larger files: split them).
    public static let sizeLimit = DataFile.sizeLimit

    public static func read(_ path: String, columns: Columns) throws -> [LabeledText] {
        let text = try DataFile.text(path)
        let lower = path.lowercased()
        let examples: [LabeledText]
        if lower.hasSuffix(".csv") || lower.hasSuffix(".tsv") || lower.hasSuffix(".txt") {
            examples = try table(text, separator: lower.hasSuffix(".csv") ? "," : "\t", path: path, columns: columns)
        } else {
            examples = try jsonLines(text, path: path, columns: columns)
        }
        guard !examples.isEmpty else { throw TrainingError("\(path) holds no examples") }
        return examples
    }

    static func jsonLines(_ text: String, path: String, columns: Columns) throws -> [LabeledText] {
        var examples: [LabeledText] = []
        for (object, location) in try DataFile.jsonObjects(text, path: path) {
            guard let value = object[columns.text] else { throw TrainingError("\(location): no \"\(columns.text)\" (the text column; --text-column names another)") }
            guard let text = value.string else { throw TrainingError("\(location): \"\(columns.text)\" is not text: \(value)") }
            var pair: String?
            if let name = columns.pair, let value = object[name], value != .null {
                guard let string = value.string else { throw TrainingError("\(location): \"\(name)\" is not text: \(value)") }
                pair = string
            }
            guard let labelValue = object[columns.label], labelValue != .null else {
                throw TrainingError("\(location): no \"\(columns.label)\" (the label column; --label-column names another)")
            }
            let label: LabeledText.Label
            if let name = labelValue.string {
                label = .name(name)
            } else if let number = labelValue.double {
                label = number.rounded() == number && abs(number) < 1e15 ? .name(String(Int(number))) : .number(number)
            } else if let list = labelValue.array {
                let names = list.compactMap { $0.string ?? $0.int.map(String.init) }
                guard names.count == list.count else { throw TrainingError("\(location): a label list must hold strings or integers: \(labelValue)") }
                label = .names(names)
            } else {
                throw TrainingError("\(location): \"\(columns.label)\" must be a string, a number or a list: \(labelValue)")
            }
            examples.append(LabeledText(text: text, pair: pair, label: label, location: location))
        }
        return examples
    }

    static func table(_ text: String, separator: Character, path: String, columns: Columns) throws -> [LabeledText] {
        let rows = try Self.rows(text, separator: separator, path: path)
        guard let header = rows.first else { return [] }
        func column(_ name: String) throws -> Int {
            guard let index = header.fields.firstIndex(of: name) else {
                throw TrainingError("\(path):1: no column \"\(name)\" in the header (\(header.fields.joined(separator: ", ")))")
            }
            return index
        }
        let textColumn = try column(columns.text), labelColumn = try column(columns.label)
        let pairColumn = columns.pair.flatMap { header.fields.firstIndex(of: $0) }
        return try rows.dropFirst().compactMap { row in
            if row.fields == [""] { return nil }  // a blank line
            let location = "\(path):\(row.line)"
            guard row.fields.count == header.fields.count else {
                throw TrainingError("\(location): \(row.fields.count) fields where the header has \(header.fields.count)")
            }
            let raw = row.fields[labelColumn].trimmingCharacters(in: .whitespaces)
            guard !raw.isEmpty else { throw TrainingError("\(location): the label (\"\(columns.label)\") is empty") }
            let label: LabeledText.Label
            if let number = Double(raw), number.rounded() != number { label = .number(number) } else { label = .name(raw) }
            return LabeledText(text: row.fields[textColumn], pair: pairColumn.map { row.fields[$0] }.flatMap { $0.isEmpty ? nil : $0 },
                               label: label, location: location)
        }
    }

    /// RFC 4180 rows: fields separated by `separator`, quoted fields may hold separators, quotes ("" inside) and line
    /// breaks. Each row with the line it starts on.
    static func rows(_ text: String, separator: Character, path: String) throws -> [(fields: [String], line: Int)] {
        var rows: [(fields: [String], line: Int)] = []
        var fields: [String] = [], field = "", quoted = false, line = 1, start = 1, atFieldStart = true
        var characters = text.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? characters.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    let next = characters.next()
                    if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                } else {
                    if c == "\n" || c == "\r\n" { line += 1 }
                    field.append(c)
                }
                continue
            }
            switch c {
            case "\"" where atFieldStart:
                quoted = true
                atFieldStart = false
            case separator:
                fields.append(field)
                field = ""
                atFieldStart = true
            case "\n", "\r\n":
                fields.append(field)
                rows.append((fields, start))
                fields = []
                field = ""
                line += 1
                start = line
                atFieldStart = true
            default:
                field.append(c)
                atFieldStart = false
            }
        }
        if quoted { throw TrainingError("\(path):\(start): a quoted field is never closed") }
        if !field.isEmpty || !fields.isEmpty {
            fields.append(field)
            rows.append((fields, start))
        }
        return rows
    }
}
