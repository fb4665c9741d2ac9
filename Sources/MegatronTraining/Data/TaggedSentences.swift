import Foundation
import TensorFiles

/// A sentence as words, each with its tag (NER's training data): `tags[i]` is `words[i]`'s tag, `O` or a prefix and
/// an entity type (`B-PER`, `I-LOC`, `E-ORG`, `S-MISC`).
public struct TaggedSentence: Sendable, Equatable {
    public var words: [String]
    public var tags: [String]
    /// Where it is, for messages: `path:line` of its first word.
    public var location: String

    public init(words: [String], tags: [String], location: String) {
        self.words = words
        self.tags = tags
        self.location = location
    }
}

/// Reads tagged sentences, in one of three formats:
/// - **CoNLL** (any name but `.jsonl` / `.json`): a word and its tag per line, columns split by spaces or tabs
///   (`tokenColumn` and `tagColumn`, 1-based; the tag's default is the last column), sentences split by blank
///   lines, `-DOCSTART-` lines skipped. Every line of a file has the same number of columns.
/// - **JSON Lines** `{"tokens": [...], "tags": [...]}` (`ner_tags` is read too), one sentence a line.
/// - **JSON Lines** `{"text": "...", "entities": [{"start": 0, "end": 12, "label": "PER"}]}`: character spans (Unicode
///   scalars, as Python counts them; `end` exclusive) over the text split at whitespace; each span must start and end
///   on a word's boundary. Tagged IOB2.
///
/// Tags must be `O` or `B-`, `I-`, `E-`, `S-` and a type; `TagScheme.detect` says which scheme a set of them uses.
///
/// ```swift
/// let sentences = try TaggedSentences.read("train.conll")  // CoNLL-2003: word POS chunk NER
/// sentences[0].words  // ["EU", "rejects", "German", "call", …]
/// ```
public enum TaggedSentences {
    public static func read(_ path: String, tokenColumn: Int = 1, tagColumn: Int? = nil) throws -> [TaggedSentence] {
        let text = try DataFile.text(path)
        let lower = path.lowercased()
        let sentences = lower.hasSuffix(".jsonl") || lower.hasSuffix(".json")
            ? try jsonLines(text, path: path)
            : try conll(text, path: path, tokenColumn: tokenColumn, tagColumn: tagColumn)
        guard !sentences.isEmpty else { throw TrainingError("\(path) holds no sentences") }
        return sentences
    }

    /// Whether `tag` has the form NER tags have: `O`, or one of B, I, E, S, a '-' and a type.
    static func isTag(_ tag: String) -> Bool {
        if tag == "O" { return true }
        let scalars = Array(tag.unicodeScalars)
        return scalars.count > 2 && "BIES".unicodeScalars.contains(scalars[0]) && scalars[1] == "-"
    }

    static func checkTag(_ tag: String, at location: String) throws {
        guard isTag(tag) else {
            throw TrainingError("\(location): \"\(tag)\" is not a NER tag (O, or B-, I-, E-, S- and an entity type, as IOB1, IOB2 and BIOES write them)")
        }
    }

    static func conll(_ text: String, path: String, tokenColumn: Int, tagColumn: Int?) throws -> [TaggedSentence] {
        guard tokenColumn >= 1, (tagColumn ?? 1) >= 1 else { throw TrainingError("--token-column and --tag-column count from 1") }
        var sentences: [TaggedSentence] = [], words: [String] = [], tags: [String] = [], start = 0
        var columns: Int?
        func close() {
            if !words.isEmpty { sentences.append(TaggedSentence(words: words, tags: tags, location: "\(path):\(start)")) }
            words = []
            tags = []
        }
        for (index, line) in DataFile.lines(text).enumerated() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard !fields.isEmpty else { close(); continue }
            if fields[0] == "-DOCSTART-" { close(); continue }
            let location = "\(path):\(index + 1)"
            if let columns, fields.count != columns {
                throw TrainingError("\(location): \(fields.count) columns where the file's lines have \(columns)")
            }
            columns = fields.count
            let tagIndex = (tagColumn ?? fields.count) - 1
            guard tokenColumn - 1 < fields.count, tagIndex < fields.count else {
                throw TrainingError("\(location): \(fields.count) columns, and --token-column \(tokenColumn) / --tag-column \(tagIndex + 1) need more")
            }
            let tag = String(fields[tagIndex])
            try checkTag(tag, at: location)
            if words.isEmpty { start = index + 1 }
            words.append(String(fields[tokenColumn - 1]))
            tags.append(tag)
        }
        close()
        return sentences
    }

    static func jsonLines(_ text: String, path: String) throws -> [TaggedSentence] {
        var sentences: [TaggedSentence] = []
        for (object, location) in try DataFile.jsonObjects(text, path: path) {
            if let tokens = object["tokens"] {
                guard let words = tokens.array?.compactMap(\.string), words.count == tokens.array?.count else {
                    throw TrainingError("\(location): \"tokens\" must be a list of strings")
                }
                guard let tagValue = object["tags"] ?? object["ner_tags"] else { throw TrainingError("\(location): \"tokens\" without \"tags\"") }
                guard let tags = tagValue.array?.compactMap(\.string), tags.count == tagValue.array?.count else {
                    throw TrainingError("\(location): \"tags\" must be a list of strings (names, not class numbers)")
                }
                guard tags.count == words.count else {
                    throw TrainingError("\(location): \(words.count) tokens and \(tags.count) tags: one tag per token")
                }
                for tag in tags { try checkTag(tag, at: location) }
                sentences.append(TaggedSentence(words: words, tags: tags, location: location))
            } else if let textValue = object["text"] {
                guard let text = textValue.string else { throw TrainingError("\(location): \"text\" is not text") }
                sentences.append(try spans(text, object["entities"] ?? .array([]), location: location))
            } else {
                throw TrainingError("\(location): neither \"tokens\" and \"tags\" nor \"text\" and \"entities\"")
            }
        }
        return sentences
    }

    /// A text with entity spans as words (split at whitespace) with IOB2 tags.
    static func spans(_ text: String, _ entities: JSONValue, location: String) throws -> TaggedSentence {
        let scalars = Array(text.unicodeScalars)
        var words: [String] = [], starts: [Int] = [], ends: [Int] = []
        var i = 0
        while i < scalars.count {
            guard !scalars[i].properties.isWhitespace else { i += 1; continue }
            var j = i
            while j < scalars.count, !scalars[j].properties.isWhitespace { j += 1 }
            var word = String.UnicodeScalarView()
            word.append(contentsOf: scalars[i..<j])
            words.append(String(word))
            starts.append(i)
            ends.append(j)
            i = j
        }
        var tags = [String](repeating: "O", count: words.count)
        guard let list = entities.array else { throw TrainingError("\(location): \"entities\" must be a list") }
        for entity in list {
            guard let start = entity.object?["start"]?.int, let end = entity.object?["end"]?.int,
                  let label = entity.object?["label"]?.string, !label.isEmpty else {
                throw TrainingError("\(location): an entity needs \"start\" and \"end\" (integers) and \"label\" (text): \(entity)")
            }
            guard let first = starts.firstIndex(of: start), let last = ends.firstIndex(of: end), first <= last else {
                throw TrainingError("\(location): the entity \(label) at \(start)..<\(end) does not start and end on word boundaries (words split at whitespace)")
            }
            guard tags[first...last].allSatisfy({ $0 == "O" }) else {
                throw TrainingError("\(location): the entity \(label) at \(start)..<\(end) overlaps another")
            }
            tags[first] = "B-" + label
            for k in (first + 1)..<(last + 1) { tags[k] = "I-" + label }
        }
        return TaggedSentence(words: words, tags: tags, location: location)
    }
}

extension TagScheme {
    /// The scheme tags are written in: BIOES (IOBES) when an `E-` or `S-` appears; else IOB1 when an `I-` starts an
    /// entity somewhere (after `O`, at the start, or after another type), IOB2 otherwise.
    public static func detect(_ sentences: [[String]]) -> TagScheme {
        if sentences.joined().contains(where: { $0.hasPrefix("E-") || $0.hasPrefix("S-") }) { return .iobes }
        for tags in sentences {
            var previous = "O"
            for tag in tags {
                if tag.hasPrefix("I-"), previous == "O" || previous.dropFirst(2) != tag.dropFirst(2) { return .iob1 }
                previous = tag
            }
        }
        return .iob2
    }
}

/// How transformers' `run_ner` turns a word's tag into its tokens' targets: the first token of each word gets the
/// word's label, the word's other tokens -100 (ignored) — or, with `labelAllTokens`, the label too, a `B-` label
/// turned into its `I-` label where the label set has one — and the special tokens -100.
///
/// ```swift
/// let targets = TokenAlignment.targets(wordIDs: [nil, 0, 1, 1, nil], labels: [3, 1], labelAllTokens: false, inside: [...])
/// // [-100, 3, 1, -100, -100]
/// ```
public enum TokenAlignment {
    /// - Parameters:
    ///   - labels: each word's label index.
    ///   - inside: for each label index, its `I-` label's index (itself when it is no `B-` label or has no `I-`).
    public static func targets(wordIDs: [Int?], labels: [Int], labelAllTokens: Bool, inside: [Int]) -> [Double] {
        var previous: Int?
        return wordIDs.map { word in
            defer { previous = word }
            guard let word else { return -100 }
            if word != previous { return Double(labels[word]) }
            return labelAllTokens ? Double(inside[labels[word]]) : -100
        }
    }

    /// `inside` for `targets`: label i's `I-` counterpart when i is a `B-` label and the names have it.
    public static func insideLabels(_ names: [String]) -> [Int] {
        names.enumerated().map { index, name in
            guard name.hasPrefix("B-") else { return index }
            return names.firstIndex(of: "I-" + name.dropFirst(2)) ?? index
        }
    }
}
