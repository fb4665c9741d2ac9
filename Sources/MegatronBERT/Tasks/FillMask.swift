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
        try requireHead([.preTraining, .maskedLM], for: "fill-mask",
                        hint: "use a masked-LM checkpoint such as NVIDIA's megatron-bert-cased-345m (MegatronBertForPreTraining)")
        guard topK >= 1 else { throw ModelError("top-k must be at least 1 (got \(topK))") }
        guard let maskID = tokenizer.maskTokenID else {
            throw ModelError(.unsupported, "the vocabulary has no \(tokenizer.maskToken) token, so fill-mask cannot mark a position")
        }
        let size = tokenizer.vocabulary.count
        let candidates = try targets.map(targetIDs) ?? (0..<size).filter { !tokenizer.specialTokenIDs.contains($0) }
        let k = min(topK, candidates.count)

        var encodings: [Encoding] = []
        for text in texts {
            let encoding = try encodeTruncating(text)
            guard encoding.ids.contains(maskID) else {
                if text.contains(tokenizer.maskToken) {  // matched whole in the raw text, so this says it is there
                    throw ModelError("every \(tokenizer.maskToken) in \"\(Self.preview(text))\" is past the model's \(maxLength) tokens: shorten the text before the mask")
                }
                throw ModelError("no \(tokenizer.maskToken) in \"\(Self.preview(text))\": write \(tokenizer.maskToken) where the word to predict goes")
            }
            encodings.append(encoding)
        }
        var results = [[[MaskPrediction]]](repeating: [], count: texts.count)
        try forEachPaddedBatch(encodings) { batch, rows in
            // Logits only where the masks are: (masks in the batch, V).
            let masks = rows.enumerated().flatMap { b, index in
                encodings[index].ids.indices.filter { encodings[index].ids[$0] == maskID }.map { (row: b, position: $0) }
            }
            let logits = try model.maskedLMLogits(batch, at: masks)
            let v = logits.shape[1]
            for (m, mask) in masks.enumerated() {
                let index = rows[mask.row], ids = encodings[index].ids
                let single = ids.filter { $0 == maskID }.count == 1
                let probabilities = softmax(logits.data + m * v, count: size)  // over real tokens only
                results[index].append(try topIndices(probabilities, among: candidates, k: k).map { id in
                    var filled = ids
                    filled[mask.position] = id
                    filled.removeAll { $0 == tokenizer.padTokenID }
                    return MaskPrediction(score: probabilities[id], token: id, tokenString: try tokenizer.decode([id]),
                                          sequence: try tokenizer.decode(filled, skipSpecialTokens: single))
                })
            }
        }
        return results
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
