/// Entity-level precision, recall and F1 of tagged sequences as `seqeval` computes them — what transformers'
/// `run_ner` reports — per entity type and overall (micro), and token accuracy.
///
/// Two ways to read entities out of tags, as seqeval has them:
/// - `.lenient` (seqeval's default, conlleval's rules): any of IOB1, IOB2, IOE and BIOES tags; a chunk ends and
///   starts where the prefix or the type changes, so `I-PER I-PER` is one PER entity and `B-PER I-LOC` two.
///   Sentences are joined into one sequence with an `O` between them, as seqeval flattens them.
/// - `.strict(scheme)` (seqeval's `mode="strict"`): only entities the scheme spells out whole count — in IOB2, a
///   `B-X` and the `I-X` after it; an `I-X` that starts nothing is no entity. Every tag must be one of the scheme's.
///
/// ```swift
/// let scores = try EntityMetrics.scores(truth: [["B-PER", "I-PER", "O"]], predicted: [["B-PER", "O", "O"]])
/// scores["overall_f1"]  // 0
/// scores["overall_accuracy"]  // 2/3
/// ```
public enum EntityMetrics {
    /// How entities are read from tags.
    public enum Mode: Equatable, Sendable {
        case lenient
        case strict(TagScheme)
    }

    /// An entity: its type and its tokens `start ..< end` in sentence `sentence` (lenient mode counts positions in
    /// the joined sequence and sentence 0).
    struct Entity: Hashable {
        var sentence: Int
        var type: String
        var start: Int
        var end: Int
    }

    /// Precision, recall, F1 and the number of true entities per type (`TYPE_precision`, `TYPE_recall`, `TYPE_f1`,
    /// `TYPE_number`) and over all types (`overall_precision`, `overall_recall`, `overall_f1`), and token accuracy
    /// (`overall_accuracy`); a ratio with nothing to divide by is 0, as seqeval's default gives.
    /// - Throws: `TrainingError` when the two lists' sentences differ in length, or (strict) a tag is not the scheme's.
    public static func scores(truth: [[String]], predicted: [[String]], mode: Mode = .lenient) throws -> [String: Double] {
        guard truth.count == predicted.count, zip(truth, predicted).allSatisfy({ $0.count == $1.count }) else {
            throw TrainingError("the true and predicted tags differ in length (sentences or tokens)")
        }
        let trueEntities = try entities(truth, mode: mode), predictedEntities = try entities(predicted, mode: mode)
        var scores: [String: Double] = [:]
        let types = Set(trueEntities.map(\.type)).union(predictedEntities.map(\.type))
        var correctTotal = 0, trueTotal = 0, predictedTotal = 0
        for type in types {
            let t = Set(trueEntities.filter { $0.type == type }), p = Set(predictedEntities.filter { $0.type == type })
            let correct = t.intersection(p).count
            let (precision, recall, f1) = ratios(correct: correct, predicted: p.count, true: t.count)
            scores[type + "_precision"] = precision
            scores[type + "_recall"] = recall
            scores[type + "_f1"] = f1
            scores[type + "_number"] = Double(t.count)
            correctTotal += correct
            trueTotal += t.count
            predictedTotal += p.count
        }
        let (precision, recall, f1) = ratios(correct: correctTotal, predicted: predictedTotal, true: trueTotal)
        scores["overall_precision"] = precision
        scores["overall_recall"] = recall
        scores["overall_f1"] = f1
        let tokens = truth.reduce(0) { $0 + $1.count }
        let same = zip(truth.joined(), predicted.joined()).filter { $0 == $1 }.count
        scores["overall_accuracy"] = tokens == 0 ? 0 : Double(same) / Double(tokens)
        return scores
    }

    static func ratios(correct: Int, predicted: Int, true count: Int) -> (precision: Double, recall: Double, f1: Double) {
        let precision = predicted == 0 ? 0 : Double(correct) / Double(predicted)
        let recall = count == 0 ? 0 : Double(correct) / Double(count)
        let f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
        return (precision, recall, f1)
    }

    /// The entities of tagged sentences, each once (seqeval counts sets).
    static func entities(_ sentences: [[String]], mode: Mode) throws -> Set<Entity> {
        switch mode {
        case .lenient: return lenientEntities(sentences)
        case .strict(let scheme):
            var all = Set<Entity>()
            for (index, sentence) in sentences.enumerated() { all.formUnion(try scheme.entities(sentence, sentence: index)) }
            return all
        }
    }

    /// seqeval's `get_entities`: the sentences joined with an `O` after each, then chunks where conlleval's rules put
    /// their ends and starts.
    static func lenientEntities(_ sentences: [[String]]) -> Set<Entity> {
        var joined: [String] = []
        for sentence in sentences { joined += sentence + ["O"] }
        var chunks = Set<Entity>()
        var previousTag: Character = "O", previousType = "", begin = 0
        for (i, chunk) in (joined + ["O"]).enumerated() {
            let tag = chunk.first ?? "O"
            // The type: what follows the first '-' after the prefix ("B-PER" → "PER"), or "_" when nothing does.
            let rest = chunk.dropFirst()
            let type = rest.firstIndex(of: "-").map { String(rest[rest.index(after: $0)...]) } ?? String(rest)
            let chunkType = type.isEmpty ? "_" : type
            if endOfChunk(previousTag, tag, previousType, chunkType) {
                chunks.insert(Entity(sentence: 0, type: previousType, start: begin, end: i))
            }
            if startOfChunk(previousTag, tag, previousType, chunkType) { begin = i }
            previousTag = tag
            previousType = chunkType
        }
        return chunks
    }

    static func endOfChunk(_ previous: Character, _ tag: Character, _ previousType: String, _ type: String) -> Bool {
        if previous == "E" || previous == "S" { return true }
        if previous == "B" || previous == "I", tag == "B" || tag == "S" || tag == "O" { return true }
        return previous != "O" && previous != "." && previousType != type
    }

    static func startOfChunk(_ previous: Character, _ tag: Character, _ previousType: String, _ type: String) -> Bool {
        if tag == "B" || tag == "S" { return true }
        if previous == "E" || previous == "S" || previous == "O", tag == "E" || tag == "I" { return true }
        return tag != "O" && tag != "." && previousType != type
    }
}

/// A tagging scheme, as seqeval's `scheme` module defines each: the prefixes it allows and the prefix patterns that
/// start an entity, continue it and end it.
public enum TagScheme: String, Sendable, CaseIterable, Codable {
    case iob1 = "IOB1", iob2 = "IOB2", ioe1 = "IOE1", ioe2 = "IOE2", iobes = "IOBES", bilou = "BILOU"

    /// A pattern: the previous token's prefixes, this token's, and whether their types must be the same, differ, or
    /// either.
    struct Pattern {
        var previous: Set<Character>
        var current: Set<Character>
        var types: Types
        enum Types { case same, different, any }
    }

    static let anyPrefix: Set<Character> = ["I", "O", "B", "E", "S", "U", "L"]

    var allowed: Set<Character> {
        switch self {
        case .iob1, .iob2: ["I", "O", "B"]
        case .ioe1, .ioe2: ["I", "O", "E"]
        case .iobes: ["I", "O", "B", "E", "S"]
        case .bilou: ["B", "I", "L", "O", "U"]
        }
    }

    private static func p(_ previous: String, _ current: String, _ types: Pattern.Types) -> Pattern {
        Pattern(previous: previous == "*" ? anyPrefix : Set(previous), current: current == "*" ? anyPrefix : Set(current), types: types)
    }

    /// The scheme's patterns, made once (`entities` reads them at every token).
    struct Rules {
        var starts: [Pattern], insides: [Pattern], ends: [Pattern]
    }

    private static let rules = Dictionary(uniqueKeysWithValues: allCases.map {
        ($0, Rules(starts: $0.startPatterns, insides: $0.insidePatterns, ends: $0.endPatterns))
    })

    private var startPatterns: [Pattern] {
        switch self {
        case .iob1: [Self.p("O", "I", .any), Self.p("I", "I", .different), Self.p("B", "I", .any), Self.p("I", "B", .same), Self.p("B", "B", .same)]
        case .iob2: [Self.p("*", "B", .any)]
        case .ioe1: [Self.p("O", "I", .any), Self.p("I", "I", .different), Self.p("E", "I", .any), Self.p("E", "E", .same)]
        case .ioe2: [Self.p("O", "I", .any), Self.p("O", "E", .any), Self.p("E", "I", .any), Self.p("E", "E", .any),
                     Self.p("I", "I", .different), Self.p("I", "E", .different)]
        case .iobes: [Self.p("*", "B", .any), Self.p("*", "S", .any)]
        case .bilou: [Self.p("*", "B", .any), Self.p("*", "U", .any)]
        }
    }

    private var insidePatterns: [Pattern] {
        switch self {
        case .iob1, .iob2: [Self.p("B", "I", .same), Self.p("I", "I", .same)]
        case .ioe1, .ioe2: [Self.p("I", "I", .same), Self.p("I", "E", .same)]
        case .iobes: [Self.p("B", "I", .same), Self.p("B", "E", .same), Self.p("I", "I", .same), Self.p("I", "E", .same)]
        case .bilou: [Self.p("B", "I", .same), Self.p("B", "L", .same), Self.p("I", "I", .same), Self.p("I", "L", .same)]
        }
    }

    private var endPatterns: [Pattern] {
        switch self {
        case .iob1: [Self.p("I", "I", .different), Self.p("I", "O", .any), Self.p("I", "B", .any), Self.p("B", "O", .any),
                     Self.p("B", "I", .different), Self.p("B", "B", .same)]
        case .iob2: [Self.p("I", "O", .any), Self.p("I", "I", .different), Self.p("I", "B", .any), Self.p("B", "O", .any),
                     Self.p("B", "I", .different), Self.p("B", "B", .any)]
        case .ioe1: [Self.p("I", "I", .different), Self.p("I", "O", .any), Self.p("I", "E", .different), Self.p("E", "I", .same),
                     Self.p("E", "E", .same)]
        case .ioe2: [Self.p("E", "*", .any)]
        case .iobes: [Self.p("S", "*", .any), Self.p("E", "*", .any)]
        case .bilou: [Self.p("U", "*", .any), Self.p("L", "*", .any)]
        }
    }

    /// A token as seqeval's `Token` reads it: the prefix (first character) and the type (the rest without its
    /// leading and trailing '-', "_" when empty).
    struct Token {
        var prefix: Character
        var type: String
        init(_ tag: String) {
            prefix = tag.first ?? "O"
            var type = Substring(tag.dropFirst())
            while type.first == "-" { type = type.dropFirst() }
            while type.last == "-" { type = type.dropLast() }
            self.type = type.isEmpty ? "_" : String(type)
        }
    }

    func matches(_ patterns: [Pattern], previous: Token, current: Token) -> Bool {
        patterns.contains { pattern in
            guard pattern.previous.contains(previous.prefix), pattern.current.contains(current.prefix) else { return false }
            switch pattern.types {
            case .any: return true
            case .same: return previous.type == current.type
            case .different: return previous.type != current.type
            }
        }
    }

    /// seqeval's `Tokens.entities` for one sentence: from each token that starts an entity, forward while tokens
    /// continue it; the entity counts when the token after it ends it.
    func entities(_ tags: [String], sentence: Int) throws -> [EntityMetrics.Entity] {
        let tokens = tags.map(Token.init) + [Token("O")]
        for (tag, token) in zip(tags, tokens) where !allowed.contains(token.prefix) {
            throw TrainingError("the tag \(tag) is not an \(rawValue) tag (its prefixes: \(allowed.sorted().map(String.init).joined(separator: ", ")))")
        }
        let rules = Self.rules[self]!
        var found: [EntityMetrics.Entity] = []
        var i = 0, previous = Token("O")
        while i < tokens.count {
            let token = tokens[i]
            if matches(rules.starts, previous: previous, current: token) {
                // The closing "O" continues nothing, so `end` stops at it at the latest.
                var end = i + 1, inside = token
                while matches(rules.insides, previous: inside, current: tokens[end]) {
                    inside = tokens[end]
                    end += 1
                }
                if matches(rules.ends, previous: tokens[end - 1], current: tokens[end]) {
                    found.append(EntityMetrics.Entity(sentence: sentence, type: token.type, start: i, end: end))
                }
                i = end
            } else {
                i += 1
            }
            previous = tokens[i - 1]
        }
        return found
    }
}
