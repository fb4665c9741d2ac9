/// One tokenized input, as Hugging Face's `Encoding`: parallel arrays, one entry per token.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int]
    /// 0 for the first text (and its [CLS]/[SEP]), 1 for the second text and its final [SEP].
    public var typeIDs: [Int]
    public var attentionMask: [Int]
    /// 1 for the [CLS]/[SEP]/[PAD] the tokenizer added, 0 for tokens of the text.
    public var specialTokensMask: [Int]
    public var tokens: [String]
    /// Character (Unicode code point) ranges in the text each token came from, as HF counts them;
    /// `0..<0` for added special tokens.
    public var offsets: [Range<Int>]
    /// The same ranges in UTF-8 bytes.
    public var byteOffsets: [Range<Int>]
    /// The index of the word each token belongs to, in its text; nil for added special tokens.
    public var wordIDs: [Int?]
    /// 0 or 1 for the text each token came from; nil for added special tokens.
    public var sequenceIDs: [Int?]

    public var count: Int { ids.count }

    init() {
        ids = []; typeIDs = []; attentionMask = []; specialTokensMask = []; tokens = []
        offsets = []; byteOffsets = []; wordIDs = []; sequenceIDs = []
    }

    /// The encodings one after another, as one (run_mlm's `group_texts` before it cuts blocks): word indices
    /// renumbered to stay distinct across the texts; offsets stay each text's own.
    ///
    /// ```swift
    /// let all = Encoding.concatenated(try texts.map { try tokenizer.encode($0) })
    /// let blocks = stride(from: 0, to: all.count, by: 128).map { all.slice($0..<min($0 + 128, all.count)) }
    /// ```
    public static func concatenated(_ encodings: [Encoding]) -> Encoding {
        var joined = Encoding()
        var words = 0
        for e in encodings {
            joined.ids += e.ids; joined.typeIDs += e.typeIDs; joined.attentionMask += e.attentionMask
            joined.specialTokensMask += e.specialTokensMask; joined.tokens += e.tokens; joined.offsets += e.offsets
            joined.byteOffsets += e.byteOffsets; joined.sequenceIDs += e.sequenceIDs
            joined.wordIDs += e.wordIDs.map { $0.map { $0 + words } }
            words += (e.wordIDs.compactMap { $0 }.max() ?? -1) + 1
        }
        return joined
    }

    /// The tokens in `range`, as an encoding of their own.
    public func slice(_ range: Range<Int>) -> Encoding {
        var part = Encoding()
        part.ids = Array(ids[range]); part.typeIDs = Array(typeIDs[range]); part.attentionMask = Array(attentionMask[range])
        part.specialTokensMask = Array(specialTokensMask[range]); part.tokens = Array(tokens[range]); part.offsets = Array(offsets[range])
        part.byteOffsets = Array(byteOffsets[range]); part.wordIDs = Array(wordIDs[range]); part.sequenceIDs = Array(sequenceIDs[range])
        return part
    }

    mutating func append(id: Int, token: String, type: Int, special: Bool, offsets: Range<Int>, bytes: Range<Int>,
                         word: Int?, sequence: Int?) {
        ids.append(id); tokens.append(token); typeIDs.append(type); attentionMask.append(1)
        specialTokensMask.append(special ? 1 : 0); self.offsets.append(offsets); byteOffsets.append(bytes)
        wordIDs.append(word); sequenceIDs.append(sequence)
    }

    mutating func appendSpecial(id: Int, token: String, type: Int) {
        append(id: id, token: token, type: type, special: true, offsets: 0..<0, bytes: 0..<0, word: nil, sequence: nil)
    }

    mutating func reserve(_ count: Int) {
        ids.reserveCapacity(count); typeIDs.reserveCapacity(count); attentionMask.reserveCapacity(count)
        specialTokensMask.reserveCapacity(count); tokens.reserveCapacity(count); offsets.reserveCapacity(count)
        byteOffsets.reserveCapacity(count); wordIDs.reserveCapacity(count); sequenceIDs.reserveCapacity(count)
    }

    /// A text's pieces in `range`, with their character offsets and UTF-8 byte offsets in the text.
    mutating func appendPieces(_ text: BERTTokenizer.TextPieces, _ range: Range<Int>, sequence: Int, vocabulary: Vocabulary) {
        for piece in text.pieces[range] {
            append(id: piece.id, token: vocabulary.tokens[piece.id], type: sequence, special: false, offsets: piece.range,
                   bytes: piece.bytes, word: piece.word, sequence: sequence)
        }
    }

    /// Pads on the right to `length` with the pad token (attention 0, special 1).
    mutating func pad(to length: Int, id: Int, token: String) {
        while ids.count < length {
            appendSpecial(id: id, token: token, type: 0)
            attentionMask[attentionMask.count - 1] = 0
        }
    }
}

/// How a text pair is cut down to `maxLength` (Hugging Face's names).
public enum TruncationStrategy: String, Sendable, CaseIterable {
    /// Remove a token from the longer text, one at a time, until the pair fits.
    case longestFirst = "longest_first"
    case onlyFirst = "only_first"
    case onlySecond = "only_second"
    /// Never truncate (an input over `maxLength` stays as it is).
    case doNotTruncate = "do_not_truncate"
}

/// Which end of a text truncation cuts (Hugging Face's `truncation_side`). The strategy decides how many tokens each
/// text keeps; the side decides whether those are its first (`right`: the end is cut) or its last (`left`).
public enum TruncationSide: String, Sendable, CaseIterable {
    case right
    case left
}
