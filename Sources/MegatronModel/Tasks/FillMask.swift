import BERTTokenizer
import Foundation

/// One candidate for a `[MASK]`, with Hugging Face's fill-mask fields.
public struct MaskPrediction: Sendable, Equatable, Codable {
    /// The probability of `token` at the mask (softmax over the tokenizer's vocabulary).
    public var score: Double
    /// The token id.
    public var token: Int
    /// The token as text (`decode([token])`).
    public var tokenString: String
    /// The input with this token in the mask (special tokens dropped when the text has one mask).
    public var sequence: String

    enum CodingKeys: String, CodingKey {
        case score, token, tokenString = "token_str", sequence
    }
}

/// One text's fill-mask answer in Hugging Face's JSON shape: a list of predictions for a text with one mask, a list
/// of lists (one per mask) for several.
///
/// ```swift
/// let answer = FillMaskAnswer(try pipeline.fillMask(["Paris is the [MASK] of France."])[0])
/// let json = try JSONEncoder().encode(answer)   // [{"score": …, "token": …, "token_str": …, "sequence": …}, …]
/// ```
public enum FillMaskAnswer: Encodable, Sendable {
    case one([MaskPrediction]), several([[MaskPrediction]])

    /// The answer for a text's masks (`fillMask`'s per-text result).
    public init(_ masks: [[MaskPrediction]]) { self = masks.count == 1 ? .one(masks[0]) : .several(masks) }

    /// The predictions per mask.
    public var masks: [[MaskPrediction]] {
        switch self {
        case .one(let p): [p]
        case .several(let m): m
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .one(let p): try container.encode(p)
        case .several(let m): try container.encode(m)
        }
    }
}

/// Fill-mask: one row per text, truncated to the model's limit; the masked-LM head runs only at the masks.
/// Scores follow Hugging Face's fill-mask pipeline with two differences that matter for Megatron-BERT: the padded
/// embedding rows past the tokenizer's vocabulary (28996..<29056) are not part of the softmax, and special tokens
/// ([CLS], [SEP], [PAD], [UNK], [MASK]) are never candidates.
public struct FillMaskTask: ModelTask {
    public let pipeline: Pipeline
    public let topK: Int
    /// The token ids that may fill a mask.
    let candidates: [Int]
    let maskID: Int
    public var work: RowWork { .maskedPositions }

    /// - Parameter targets: score only these words (a word not in the vocabulary is scored by its first
    ///   WordPiece, with a warning, as transformers does).
    /// - Throws: for a model without a masked-LM head, an empty target list.
    public init(pipeline: Pipeline, topK: Int = 5, targets: [String]? = nil) throws {
        try pipeline.require(.fillMask)
        try TaskDescriptor.fillMask.check("top_k", topK)
        let tokenizer = pipeline.tokenizer
        guard let maskID = tokenizer.maskTokenID else {
            throw ModelError(.unsupported, "the vocabulary has no \(tokenizer.maskToken) token, so fill-mask cannot mark a position")
        }
        self.pipeline = pipeline
        self.topK = topK
        self.maskID = maskID
        candidates = try targets.map(pipeline.targetIDs)
            ?? (0..<tokenizer.vocabulary.count).filter { !tokenizer.specialTokenIDs.contains($0) }
    }

    /// - Throws: for a text without `[MASK]`, or whose every mask is past the model's limit.
    public func prepare(_ texts: [String]) throws -> (rows: [ModelRow], plan: [ModelRow]) {
        let tokenizer = pipeline.tokenizer
        let rows = try texts.map { text -> ModelRow in
            let encoding = try pipeline.encodeTruncating(text)
            let masks = encoding.ids.indices.filter { encoding.ids[$0] == maskID }
            guard !masks.isEmpty else {
                if text.contains(tokenizer.maskToken) {  // matched whole in the raw text, so this says it is there
                    throw ModelError("every \(tokenizer.maskToken) in \"\(Pipeline.preview(text))\" is past the model's \(pipeline.maxLength) tokens: shorten the text before the mask")
                }
                throw ModelError("no \(tokenizer.maskToken) in \"\(Pipeline.preview(text))\": write \(tokenizer.maskToken) where the word to predict goes")
            }
            return ModelRow(encoding, maskedPositions: masks)
        }
        return (rows, rows)
    }

    /// For text i, mask j (left to right), the `topK` best tokens.
    public func finish(_ outputs: [RowOutput], plan rows: [ModelRow]) throws -> [[[MaskPrediction]]] {
        let tokenizer = pipeline.tokenizer, size = tokenizer.vocabulary.count
        let k = min(topK, candidates.count)
        return try zip(outputs, rows).map { output, row in
            guard case .maskedLM(let logits, let v)? = output.head else { throw missingOutput("masked-LM logits", task: "fill-mask") }
            let ids = row.encodings[0].ids
            let single = row.maskedPositions.count == 1
            return try row.maskedPositions.enumerated().map { m, position in
                let probabilities = logits.withUnsafeBufferPointer { softmax($0.baseAddress! + m * v, count: size) }  // over real tokens only
                return try topIndices(probabilities, among: candidates, k: k).map { id in
                    var filled = ids
                    filled[position] = id
                    filled.removeAll { $0 == tokenizer.padTokenID }
                    return MaskPrediction(score: probabilities[id], token: id, tokenString: try tokenizer.decode([id]),
                                          sequence: try tokenizer.decode(filled, skipSpecialTokens: single))
                }
            }
        }
    }
}

extension Pipeline {
    /// Fills each `[MASK]` of each text: for text i, mask j (left to right), the `topK` best tokens.
    ///
    /// Scores follow Hugging Face's fill-mask pipeline with two differences that matter for Megatron-BERT:
    /// the padded embedding rows past the tokenizer's vocabulary (28996..<29056) are not part of the softmax,
    /// and special tokens ([CLS], [SEP], [PAD], [UNK], [MASK]) are never candidates.
    ///
    /// ```swift
    /// let best = try pipeline.fillMask(["Paris is the [MASK] of France."], topK: 3)[0][0]
    /// print(best.map(\.tokenString))  // e.g. ["capital", "center", "heart"]
    /// ```
    /// - Parameter targets: score only these words (a word not in the vocabulary is scored by its first
    ///   WordPiece, with a warning, as transformers does).
    /// - Throws: for a text without `[MASK]`, a model without a masked-LM head, an empty target list.
    public func fillMask(_ texts: [String], topK: Int = 5, targets: [String]? = nil) throws -> [[[MaskPrediction]]] {
        try run(try FillMaskTask(pipeline: self, topK: topK, targets: targets), texts)
    }

    /// Target words to token ids, deduplicated: the word's own id, else its first WordPiece (warned).
    func targetIDs(_ targets: [String]) throws -> [Int] {
        var ids: [Int] = []
        for target in targets {
            if let id = tokenizer.vocabulary.id(of: target) {
                ids.append(id)
                continue
            }
            let pieces = try tokenizer.encode(target).ids.dropFirst().dropLast()  // without [CLS] and [SEP]
            guard let first = pieces.first, first != tokenizer.unknownTokenID else {
                warn("target \"\(target)\" is not in the vocabulary and has no known first piece; it is ignored")
                continue
            }
            warn("target \"\(target)\" is not in the vocabulary; scoring its first piece \"\(tokenizer.vocabulary.token(of: first) ?? "")\" instead")
            ids.append(first)
        }
        ids = Array(Set(ids)).sorted()
        guard !ids.isEmpty else { throw ModelError("none of the targets \(targets) can be scored: give words from the vocabulary") }
        return ids
    }
}
