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

extension MaskedLMData {
    /// A sentence pair for next-sentence prediction: `[CLS] A [SEP] B [SEP]` (token types 0, then 1 from B on), B
    /// the sentences that follow A in its document (label 0, `IsNext`) or taken from another document (label 1).
    public struct SentencePair: Sendable, Equatable {
        public var encoding: Encoding
        public var isRandomNext: Bool
    }

    /// The documents of a file for next-sentence prediction, in BERT's pre-training format: plain text with one
    /// sentence per line and blank lines between documents; or JSON Lines, each object a document whose `column` is
    /// an array of sentences.
    public static func readDocuments(_ path: String, column: String = "text") throws -> [[String]] {
        let text = try DataFile.text(path)
        var documents: [[String]] = []
        if path.lowercased().hasSuffix(".jsonl") {
            for (object, location) in try DataFile.jsonObjects(text, path: path) {
                guard let sentences = object[column]?.array?.map({ $0.string }), sentences.allSatisfy({ $0 != nil }) else {
                    throw TrainingError("\(location): next-sentence prediction needs \"\(column)\" as an array of sentences (strings)")
                }
                documents.append(sentences.compactMap { $0 }.filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty })
            }
        } else {
            documents = [[]]
            for line in DataFile.lines(text) {
                let sentence = line.trimmingCharacters(in: .whitespacesAndNewlines)
                if sentence.isEmpty {
                    if !(documents.last?.isEmpty ?? true) { documents.append([]) }
                } else {
                    documents[documents.count - 1].append(sentence)
                }
            }
        }
        documents.removeAll { $0.isEmpty }
        guard !documents.isEmpty else { throw TrainingError("\(path) holds no text") }
        return documents
    }

    /// Sentence pairs as BERT's `create_pretraining_data.py` (and transformers' `TextDatasetForNextSentencePrediction`)
    /// make them, from each document in turn: sentences gathered until they reach a target length (`maxLength` − 3,
    /// or with probability `shortSequenceProbability` a random length from 2), A the first 1…n−1 of them; B the rest
    /// (`IsNext`) or — always for a one-sentence chunk, else with probability `randomNextProbability` — sentences from
    /// a random other document, the unused ones going back to the document for its next pair. A pair over `maxLength`
    /// is cut as BERT's `truncate_seq_pair` cuts it (a token from the longer side, its front or back at random, until
    /// it fits), which transformers' version leaves out (its pairs can pass the model's length). Drawn from `random`,
    /// so that a seed gives the same pairs.
    ///
    /// ```swift
    /// var random = SeededRandom(seed: 42)
    /// let pairs = try MaskedLMData.sentencePairs(try MaskedLMData.readDocuments("wiki.txt"), tokenizer: tokenizer,
    ///                                            maxLength: 128, random: &random)
    /// ```
    public static func sentencePairs(_ documents: [[String]], tokenizer: BERTTokenizer, maxLength: Int, random: inout SeededRandom,
                                     shortSequenceProbability: Double = 0.1, randomNextProbability: Double = 0.5) throws -> [SentencePair] {
        let limit = maxLength - 3  // [CLS], [SEP], [SEP]
        guard limit >= 2 else { throw TrainingError("next-sentence pairs need --max-length of at least 5 ([CLS] A [SEP] B [SEP])") }
        // Each sentence's tokens without [CLS] and [SEP]; sentences with no tokens left out (as transformers does).
        let tokenized: [[Encoding]] = try documents.map { sentences in
            try sentences.map { let e = try tokenizer.encode($0); return e.slice(1..<(e.count - 1)) }.filter { $0.count > 0 }
        }
        let special = try tokenizer.encode("")  // [CLS] [SEP]
        let cls = special.slice(0..<1), sep = special.slice(1..<2)
        func between(_ low: Int, _ high: Int) -> Int { low + Int(random.next() % UInt64(high - low + 1)) }  // Python's randint
        var pairs: [SentencePair] = []
        for (index, document) in tokenized.enumerated() {
            let target = random.uniform() < shortSequenceProbability ? between(2, limit) : limit
            var chunk: [Encoding] = [], length = 0, i = 0
            while i < document.count {
                chunk.append(document[i])
                length += document[i].count
                if i == document.count - 1 || length >= target {
                    let aEnd = chunk.count >= 2 ? between(1, chunk.count - 1) : 1
                    var a = Encoding.concatenated(Array(chunk[0..<aEnd])), b: Encoding
                    let isRandomNext = chunk.count == 1 || random.uniform() < randomNextProbability
                    if isRandomNext {
                        var other = index
                        for _ in 0..<10 where tokenized.count > 1 {
                            other = between(0, tokenized.count - 1)
                            if other != index { break }
                        }
                        let source = tokenized[other].isEmpty ? document : tokenized[other]
                        var taken: [Encoding] = [], takenLength = 0
                        for sentence in source[between(0, source.count - 1)...] {
                            taken.append(sentence)
                            takenLength += sentence.count
                            if takenLength >= target - a.count { break }
                        }
                        b = Encoding.concatenated(taken)
                        i -= chunk.count - aEnd  // the sentences not used go back
                    } else {
                        b = Encoding.concatenated(Array(chunk[aEnd...]))
                    }
                    while a.count + b.count > limit {  // truncate_seq_pair
                        let front = random.uniform() < 0.5
                        if a.count > b.count { a = front ? a.slice(1..<a.count) : a.slice(0..<(a.count - 1)) }
                        else { b = front ? b.slice(1..<b.count) : b.slice(0..<(b.count - 1)) }
                    }
                    var encoding = Encoding.concatenated([cls, a, sep, b, sep])
                    for t in (a.count + 2)..<encoding.count { encoding.typeIDs[t] = 1 }
                    for t in (a.count + 2)..<(encoding.count - 1) { encoding.sequenceIDs[t] = 1 }
                    pairs.append(SentencePair(encoding: encoding, isRandomNext: isRandomNext))
                    (chunk, length) = ([], 0)
                }
                i += 1
            }
        }
        return pairs
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
    /// -100 elsewhere. `special` marks the tokens never chosen (special ids — [CLS], [SEP], [UNK], [PAD], [MASK] — and
    /// padding); `words` gives each token's word and `lengths` each row's tokens before padding (for whole words). At
    /// least one token of the batch is chosen (a batch with none would have no loss).
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
