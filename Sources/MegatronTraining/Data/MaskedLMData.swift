import BERTTokenizer
import Foundation
import MegatronBackend
import TensorFiles

/// Raw text for continued masked-LM pre-training (domain adaptation, as NVIDIA made BioMegatron), read and cut into
/// sequences as transformers' `run_mlm` does.
///
/// ```swift
/// let texts = try MaskedLMData.read("pubmed.txt")  // one document per line
/// let sequences = try MaskedLMData.sequences(texts, tokenizer: tokenizer, maxLength: 128)
/// ```
public enum MaskedLMData {
    /// The documents of a file: one per non-blank line of plain text, or (`.jsonl`) the `column` string of each JSON
    /// Lines object.
    public static func read(_ path: String, column: String = "text") throws -> [String] {
        let text = try DataFile.text(path)
        let documents: [String]
        if path.lowercased().hasSuffix(".jsonl") {
            documents = try DataFile.jsonObjects(text, path: path).map { object, location in
                guard let value = object[column]?.string else { throw TrainingError("\(location): no \"\(column)\" string") }
                return value
            }.filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        } else {
            documents = DataFile.lines(text).map(String.init).filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        }
        guard !documents.isEmpty else { throw TrainingError("\(path) holds no text") }
        return documents
    }

    /// The training sequences. Packed (run_mlm's `group_texts`): every document tokenized with its [CLS] and [SEP],
    /// all of them one after another, cut into blocks of `maxLength` tokens, the last partial block dropped (kept when
    /// it is the only one). `lineByLine` (run_mlm's `--line_by_line`): each document its own sequence, cut to
    /// `maxLength`.
    public static func sequences(_ documents: [String], tokenizer: BERTTokenizer, maxLength: Int, lineByLine: Bool = false) throws -> [Encoding] {
        if lineByLine { return try documents.map { try tokenizer.encode($0, maxLength: maxLength) } }
        let all = Encoding.concatenated(try documents.map { try tokenizer.encode($0) })
        let blocks = all.count >= maxLength ? all.count / maxLength : 1
        return (0..<blocks).map { all.slice(($0 * maxLength)..<min(($0 + 1) * maxLength, all.count)) }
    }
}

/// Which tokens a masked-LM batch predicts, as transformers' data collators choose them: each non-special token with
/// probability `probability` (15%) — or, with `wholeWords`, whole words until 15% of a sequence's tokens
/// (`DataCollatorForWholeWordMask`) —; of those, 80% replaced by [MASK], 10% by a random token of the vocabulary,
/// 10% left. Drawn from the run's seeded generator, so a resumed run masks as the uninterrupted one.
///
/// ```swift
/// var random = SeededRandom(seed: 42)
/// let targets = masking.apply(to: &ids, special: special, words: words, &random)  // -100 or the original id, per token
/// ```
public struct MaskedLMMasking: Sendable, Equatable {
    public var probability = 0.15
    public var wholeWords = false
    /// The [MASK] token's id, and how many ids a random replacement is drawn from (the tokenizer's vocabulary).
    public var maskID: Int
    public var vocabularySize: Int

    public init(maskID: Int, vocabularySize: Int, probability: Double = 0.15, wholeWords: Bool = false) {
        self.maskID = maskID
        self.vocabularySize = vocabularySize
        self.probability = probability
        self.wholeWords = wholeWords
    }

    /// Masks `ids` (B, S) in place and returns the targets (B·S): the original id where a token is to be predicted,
    /// -100 elsewhere. `special` marks the tokens never chosen (special ids — [CLS], [SEP], [UNK], [PAD], [MASK] — and padding); `words` gives each token's word and
    /// `lengths` each row's tokens before padding (for whole words). At least one token of the batch is chosen (a
    /// batch with none would have no loss).
    public func apply(to ids: inout [[Int]], special: [[Bool]], words: [[Int?]], lengths: [Int], _ random: inout SeededRandom) -> [Double] {
        let s = ids.first?.count ?? 0
        var targets = [Double](repeating: -100, count: ids.count * s)
        var chosen = [[Bool]](repeating: [Bool](repeating: false, count: s), count: ids.count)
        for row in ids.indices {
            if wholeWords {
                chosen[row] = wholeWordChoice(special: special[row], words: words[row], length: lengths[row], &random)
            } else {
                for t in 0..<s where !special[row][t] { chosen[row][t] = random.uniform() < probability }
            }
        }
        if !chosen.joined().contains(true) {  // a tiny batch without a draw: one token, so that the step has a loss
            let candidates = ids.indices.flatMap { row in (0..<s).filter { !special[row][$0] }.map { (row, $0) } }
            if !candidates.isEmpty {
                let (row, t) = candidates[Int(random.next() % UInt64(candidates.count))]
                chosen[row][t] = true
            }
        }
        for row in ids.indices {
            for t in 0..<s where chosen[row][t] {
                targets[row * s + t] = Double(ids[row][t])
                let draw = random.uniform()
                if draw < 0.8 {
                    ids[row][t] = maskID
                } else if draw < 0.9 {
                    ids[row][t] = Int(random.next() % UInt64(vocabularySize))
                }
            }
        }
        return targets
    }

    /// Whole words in a random order, taken while the tokens chosen stay within round(15% of the sequence's `length`
    /// tokens, special ones counted) (at least one), a word that would pass it skipped.
    func wholeWordChoice(special: [Bool], words: [Int?], length: Int, _ random: inout SeededRandom) -> [Bool] {
        var groups: [[Int]] = []
        for t in special.indices where !special[t] {
            if let last = groups.last?.last, words[t] != nil, words[t] == words[last] { groups[groups.count - 1].append(t) } else { groups.append([t]) }
        }
        for i in stride(from: groups.count - 1, to: 0, by: -1) { groups.swapAt(i, Int(random.next() % UInt64(i + 1))) }
        let budget = max(1, Int((Double(length) * probability).rounded(.toNearestOrEven)))  // Python round()
        var chosen = [Bool](repeating: false, count: special.count), count = 0
        for group in groups where count < budget {
            guard count + group.count <= budget else { continue }
            for t in group { chosen[t] = true }
            count += group.count
        }
        return chosen
    }
}
