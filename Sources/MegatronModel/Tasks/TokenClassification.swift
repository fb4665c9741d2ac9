import BERTTokenizer
import Foundation

/// How token predictions become entities (Hugging Face's `aggregation_strategy`).
public enum Aggregation: String, Sendable, CaseIterable {
    /// Every token on its own, with its label (`entity`) and position (`index`).
    case none
    /// Neighbouring tokens with the same label (B-X then I-X …) grouped.
    case simple
    /// Words first — each word takes its first token's label — then grouped.
    case first
    /// Words take the label of their tokens' mean scores, then grouped.
    case average
    /// Words take the label of their most confident token, then grouped.
    case max
}

/// A token (aggregation `none`) or a group of tokens (the other strategies) with a label.
public struct Entity: Sendable, Equatable, Codable {
    /// The label, for aggregation `none` (e.g. "B-PER").
    public var entity: String?
    /// The label without its B-/I- prefix, for grouped entities (e.g. "PER").
    public var entityGroup: String?
    public var score: Double
    /// The token's position in its sequence (aggregation `none`).
    public var index: Int?
    /// The tokens as text (`##` pieces joined).
    public var word: String
    /// Character offsets into the input: `text[start..<end]` (Unicode scalars, as Python counts).
    public var start: Int
    public var end: Int

    enum CodingKeys: String, CodingKey { case entity, entityGroup = "entity_group", score, index, word, start, end }
}

/// Token classification (NER) with transformers' semantics: softmax per token, special tokens skipped, labels from
/// `id2label`, `ignoreLabels` dropped. Texts longer than the model's limit are cut into windows that overlap by
/// `stride` tokens (every strategy but `none`, which truncates with a warning, as transformers refuses windows
/// there); entities from overlapping windows are merged, keeping the longer (then the more confident) one.
public struct TokenClassificationTask: ModelTask {
    public let pipeline: Pipeline
    public let aggregation: Aggregation
    public let stride: Int
    public let ignoreLabels: Set<String>
    public var work: RowWork { .head }

    /// - Parameter ignoreLabels: labels left out of the results; nil means "O". Labels given explicitly must be
    ///   the model's own.
    public init(pipeline: Pipeline, aggregation: Aggregation = .simple, stride: Int? = nil,
                ignoreLabels: Set<String>? = nil) throws {
        try pipeline.require(.ner)
        let labels = (0..<pipeline.model.config.numLabels).map(pipeline.label)
        if let unknown = ignoreLabels?.subtracting(labels).sorted().first {
            throw ModelError("unknown label \"\(unknown)\": \(pipeline.source)'s labels are \(labels.joined(separator: ", "))")
        }
        self.pipeline = pipeline
        self.aggregation = aggregation
        self.stride = stride ?? pipeline.maxLength / 8
        self.ignoreLabels = ignoreLabels ?? ["O"]
    }

    /// One row per text (or windows over a long one).
    public func prepare(_ texts: [String]) throws -> (rows: [ModelRow], plan: RowOwners<String>) {
        try pipeline.rows(texts) { text in
            aggregation == .none ? [try pipeline.encodeTruncating(text)]
                : try pipeline.tokenizer.encodeWindows(text, maxLength: pipeline.maxLength, stride: stride)
        }
    }

    /// Per text, its entities (windows merged).
    public func finish(_ outputs: [RowOutput], plan: RowOwners<String>) throws -> [[Entity]] {
        var found = [[Entity]](repeating: [], count: plan.inputs.count)
        var windowCount = [Int](repeating: 0, count: plan.inputs.count)
        for i in plan.owner { windowCount[i] += 1 }
        let scalars = plan.inputs.map { Array($0.unicodeScalars) }
        for (index, output) in outputs.enumerated() {
            guard case .tokenClassification(let logits, let labels)? = output.head else {
                throw missingOutput("token logits", task: "NER")
            }
            let encoding = plan.rows[index].encodings[0]
            let tokens = logits.withUnsafeBufferPointer { p in
                pipeline.preEntities(encoding, scalars: scalars[plan.owner[index]]) { softmax(p.baseAddress! + $0 * labels, count: labels) }
            }
            found[plan.owner[index]] += pipeline.aggregate(tokens, aggregation).filter {
                !ignoreLabels.contains($0.entity ?? "") && !ignoreLabels.contains($0.entityGroup ?? "")
            }
        }
        return found.indices.map { windowCount[$0] > 1 ? Pipeline.mergeOverlapping(found[$0]) : found[$0] }
    }
}

extension Pipeline {
    /// Named entities (or any token labels) in each text (see `TokenClassificationTask`).
    ///
    /// ```swift
    /// for entity in try pipeline.entities(["John Smith lives in New York."], aggregation: .simple)[0] {
    ///     print(entity.entityGroup!, entity.word, entity.start, entity.end)
    /// }
    /// ```
    public func entities(_ texts: [String], aggregation: Aggregation = .simple, stride: Int? = nil,
                         ignoreLabels: Set<String>? = nil) throws -> [[Entity]] {
        try run(try TokenClassificationTask(pipeline: self, aggregation: aggregation, stride: stride, ignoreLabels: ignoreLabels), texts)
    }

    /// A token before aggregation.
    struct TokenPrediction {
        var word: String
        var scores: [Double]
        var start: Int, end: Int
        var index: Int
        var isSubword: Bool
    }

    /// Non-special tokens with their scores, offsets and whether they continue a word.
    func preEntities(_ encoding: Encoding, scalars: [Unicode.Scalar], scores: (Int) -> [Double]) -> [TokenPrediction] {
        var tokens: [TokenPrediction] = []
        for i in encoding.ids.indices where encoding.specialTokensMask[i] == 0 && encoding.attentionMask[i] == 1 {
            let range = encoding.offsets[i]
            let text = String(String.UnicodeScalarView(scalars[range]))
            var word = encoding.tokens[i]
            // A piece is a subword when it is not the text it covers (the "##" prefix makes it longer).
            var isSubword = word.unicodeScalars.count != range.count
            if encoding.ids[i] == tokenizer.unknownTokenID {
                word = text
                isSubword = false
            }
            tokens.append(TokenPrediction(word: word, scores: scores(i), start: range.lowerBound, end: range.upperBound,
                                          index: i, isSubword: isSubword))
        }
        return tokens
    }

    func aggregate(_ tokens: [TokenPrediction], _ aggregation: Aggregation) -> [Entity] {
        func best(_ scores: [Double]) -> Int { topIndices(scores, among: Array(scores.indices), k: 1)[0] }
        var entities: [Entity] = []
        switch aggregation {
        case .none, .simple:
            entities = tokens.map {
                let i = best($0.scores)
                return Entity(entity: label(i), score: $0.scores[i], index: $0.index, word: $0.word, start: $0.start, end: $0.end)
            }
            if aggregation == .none { return entities }
        case .first, .average, .max:
            var words: [[TokenPrediction]] = []
            for token in tokens {
                if token.isSubword, !words.isEmpty { words[words.count - 1].append(token) } else { words.append([token]) }
            }
            entities = words.map { group in
                let scores: [Double]
                switch aggregation {
                case .first: scores = group[0].scores
                case .max:  // the most confident token's scores (the first of equals)
                    scores = group.max { ($0.scores.max() ?? 0) < ($1.scores.max() ?? 0) }?.scores ?? group[0].scores
                default: scores = group[0].scores.indices.map { j in group.map { $0.scores[j] }.reduce(0, +) / Double(group.count) }
                }
                let i = best(scores)
                return Entity(entity: label(i), score: scores[i], word: tokenizer.convertTokensToString(group.map(\.word)),
                              start: group[0].start, end: group[group.count - 1].end)
            }
        }
        return group(entities)
    }

    /// Neighbouring entities with the same tag joined (a B- tag starts a new group).
    func group(_ entities: [Entity]) -> [Entity] {
        func tag(_ label: String) -> (isBegin: Bool, tag: String) {
            if label.hasPrefix("B-") { return (true, String(label.dropFirst(2))) }
            if label.hasPrefix("I-") { return (false, String(label.dropFirst(2))) }
            return (false, label)
        }
        var groups: [[Entity]] = []
        for entity in entities {
            let current = tag(entity.entity ?? "")
            if let last = groups.last?.last, tag(last.entity ?? "").tag == current.tag, !current.isBegin {
                groups[groups.count - 1].append(entity)
            } else {
                groups.append([entity])
            }
        }
        return groups.map { members in
            // "B-PER" -> "PER", as Python's label.split("-", 1)[-1].
            let parts = (members[0].entity ?? "").split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            let bare = String(parts[parts.count - 1])
            return Entity(entityGroup: bare, score: members.map(\.score).reduce(0, +) / Double(members.count),
                          word: tokenizer.convertTokensToString(members.map(\.word)),
                          start: members[0].start, end: members[members.count - 1].end)
        }
    }

    /// Entities of overlapping windows, sorted by start; of two that overlap the longer (then the more
    /// confident) stays.
    static func mergeOverlapping(_ entities: [Entity]) -> [Entity] {
        let sorted = entities.enumerated().sorted { ($0.element.start, $0.offset) < ($1.element.start, $1.offset) }.map(\.element)
        guard var previous = sorted.first else { return [] }
        var merged: [Entity] = []
        for entity in sorted {
            if previous.start <= entity.start && entity.start < previous.end {
                let length = entity.end - entity.start, previousLength = previous.end - previous.start
                if length > previousLength || (length == previousLength && entity.score > previous.score) { previous = entity }
            } else {
                merged.append(previous)
                previous = entity
            }
        }
        merged.append(previous)
        return merged
    }
}
