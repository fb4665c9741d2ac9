import Foundation
import Testing
import TensorFiles
@testable import BERTTokenizer

@Suite struct BERTTokenizerTests {
    static let tokenizer = try! BERTTokenizer(vocabulary: Golden.vocabulary)

    @Test func encodesAPairWithSpecialTokensAndTypes() throws {
        let e = try Self.tokenizer.encode("Who is it?", pair: "It is me.")
        #expect(e.tokens == ["[CLS]", "Who", "is", "it", "?", "[SEP]", "It", "is", "me", ".", "[SEP]"])
        #expect(e.typeIDs == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
        #expect(e.sequenceIDs == [nil, 0, 0, 0, 0, nil, 1, 1, 1, 1, nil])
        #expect(e.attentionMask == Array(repeating: 1, count: 11))
    }

    @Test func byteOffsetsCountUTF8() throws {
        let text = "é😀 x"
        let e = try Self.tokenizer.encode(text)
        let bytes = Array(text.utf8)
        for (range, token) in zip(e.byteOffsets, e.tokens) where !range.isEmpty {
            let piece = String(decoding: bytes[range], as: UTF8.self)
            #expect(token == "[UNK]" || piece == token.replacingOccurrences(of: "##", with: ""), "\(piece) vs \(token)")
        }
        #expect(e.offsets.last(where: { !$0.isEmpty }) == 3..<4)  // "x" is the 4th code point
        #expect(e.byteOffsets.last(where: { !$0.isEmpty }) == 7..<8)  // after 2 + 4 + 1 bytes
    }

    @Test func padsToTheLongestAndToAMultiple() throws {
        let a = try Self.tokenizer.encode("one"), b = try Self.tokenizer.encode("one two three")
        let padded = Self.tokenizer.pad([a, b])
        #expect(padded.map(\.count) == [5, 5])
        #expect(padded[0].attentionMask == [1, 1, 1, 0, 0])
        #expect(padded[0].ids.suffix(2) == [0, 0])
        #expect(padded[0].specialTokensMask == [1, 0, 1, 1, 1])
        #expect(Self.tokenizer.pad([a, b], multiple: 8).map(\.count) == [8, 8])
        #expect(Self.tokenizer.pad([a], to: 6)[0].tokens.last == "[PAD]")
    }

    @Test func maxLengthMustHoldTheSpecialTokens() throws {
        #expect(throws: TokenizerError.self) { try Self.tokenizer.encode("hello", maxLength: 1) }
        #expect(throws: TokenizerError.self) { try Self.tokenizer.encode("hello", pair: "there", maxLength: 2) }
        #expect(throws: TokenizerError.self) { try Self.tokenizer.encode("hello there you", maxLength: 4, truncation: .onlySecond) }
        #expect(try Self.tokenizer.encode("hello there you", maxLength: 3).tokens == ["[CLS]", "hello", "[SEP]"])
        #expect(try Self.tokenizer.encode("hello there you", maxLength: 3, truncation: .doNotTruncate).count == 5)
    }

    @Test func windowsRefuseWhatTheyCannotDo() throws {
        let long = String(repeating: "word ", count: 40)
        #expect(throws: TokenizerError.self) { try Self.tokenizer.encodeWindows(long, maxLength: 10, stride: 8) }
        #expect(throws: TokenizerError.self) { try Self.tokenizer.encodeWindows("q", pair: long, maxLength: 10, stride: 7) }
        // longest_first pairs overflow too, as HF's do: here only the long second text is windowed.
        #expect(try Self.tokenizer.encodeWindows("q", pair: long, maxLength: 10, stride: 1).count == 8)
        #expect(throws: TokenizerError.self) { try Self.tokenizer.encodeWindows(long, pair: "q", maxLength: 10, truncation: .onlySecond) }
        #expect(throws: TokenizerError.self) { try Self.tokenizer.encodeWindows(long, maxLength: 2) }
    }

    @Test func aShortTextIsOneWindow() throws {
        let windows = try Self.tokenizer.encodeWindows("short text", maxLength: 10, stride: 2)
        #expect(windows == [try Self.tokenizer.encode("short text")])
    }

    @Test func batchEncodingKeepsOrderAndMatchesOneByOne() throws {
        let texts = (0..<50).map { "text number \($0) with \(String(repeating: "more ", count: $0 % 7))words" }
        let batch = try Self.tokenizer.encodeBatch(texts.map { ($0, $0.count % 2 == 0 ? "a pair" : nil) }, padToLongest: true)
        let single = Self.tokenizer.pad(try texts.map { try Self.tokenizer.encode($0, pair: $0.count % 2 == 0 ? "a pair" : nil) })
        #expect(batch == single)
        #expect(throws: TokenizerError.self) { try Self.tokenizer.encodeBatch([("ok", nil), ("too long for this", nil)], maxLength: 1) }
    }

    /// Random Unicode (all planes, controls, surrogate-free) never crashes, and every token's offsets lie
    /// inside the text, in order.
    @Test func randomTextNeverBreaksOffsets() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var text = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0..<60, using: &generator) {
                let pick = Int.random(in: 0..<4, using: &generator)
                let value: UInt32 = pick == 0 ? UInt32.random(in: 0..<128, using: &generator)
                    : pick == 1 ? UInt32.random(in: 0x80..<0x3000, using: &generator)
                    : pick == 2 ? UInt32.random(in: 0x4E00..<0xA000, using: &generator)
                    : UInt32.random(in: 0x1F000..<0x1FAFF, using: &generator)
                if let scalar = Unicode.Scalar(value) { text.append(scalar) }
            }
            let string = String(text)
            let e = try Self.tokenizer.encode(string)
            let length = string.unicodeScalars.count
            var last = 0
            for range in e.offsets where !range.isEmpty {
                #expect(range.lowerBound >= last && range.upperBound <= length, "\(string.debugDescription)")
                last = range.lowerBound
            }
            #expect(e.ids.allSatisfy { $0 >= 0 && $0 < Golden.vocabulary.count })
        }
    }
}

/// `encodeWords` against BertTokenizerFast with `is_split_into_words=True` (Fixtures/words.zip, made by
/// scripts/make_words_fixtures.py: 3,000 sentences of 1–30 words from a mixed-script pool, cut at max_length 3..64 or
/// not): the same ids, the same word of every token, the same answer to "was anything cut"; and `encodeWordWindows`
/// against its overflowing windows (1,000 sentences of 1–40 words, max_length 4..40, a stride).
@Suite struct WordsTests {
    struct Case: Decodable {
        var words: [String]
        var max_length: Int?
        var ids: [Int]
        var word_ids: [Int]
        var cut: Bool
    }
    struct Windows: Decodable {
        struct Window: Decodable { var ids: [Int]; var word_ids: [Int] }
        var words: [String]
        var max_length: Int
        var stride: Int
        var windows: [Window]
    }
    struct File: Decodable {
        var generator: String
        var cases: [Case]
        var windows: [Windows]
    }

    @Test func wordsEncodeAsHuggingFaceSplitsThem() throws {
        let path = Golden.directory + "/words.zip"
        let mapped = try MappedFile(path: path)
        let zip = try ZipArchive(bytes: mapped.bytes, path: path)
        let contents = try zip.contents(of: try #require(zip.entry(named: "words.json")))
        let file = try JSONDecoder().decode(File.self, from: Data(contents.bytes))
        #expect(file.cases.count == 3000)
        let tokenizer = try BERTTokenizer(vocabulary: Golden.vocabulary)
        var failures = 0
        for (index, item) in file.cases.enumerated() {
            let (encoding, cut) = try tokenizer.encodeWords(item.words, maxLength: item.max_length)
            let words = encoding.wordIDs.map { $0 ?? -1 }
            if encoding.ids != item.ids || words != item.word_ids || cut != item.cut {
                failures += 1
                if failures <= 3 {
                    Issue.record("case \(index) \(item.words) max \(String(describing: item.max_length)): ids \(encoding.ids) vs \(item.ids), words \(words) vs \(item.word_ids), cut \(cut) vs \(item.cut)")
                }
            }
        }
        #expect(failures == 0, "\(failures) of \(file.cases.count) cases differ")
        #expect(throws: TokenizerError.self) { try tokenizer.encodeWords(["a"], maxLength: 1) }
        var windowFailures = 0
        for (index, item) in file.windows.enumerated() {
            let ours = try tokenizer.encodeWordWindows(item.words, maxLength: item.max_length, stride: item.stride)
            let full = try tokenizer.encodeWords(item.words).encoding
            var same = ours.count == item.windows.count
            for ((window, start), expected) in Swift.zip(ours, item.windows) {
                let words = window.wordIDs.map { $0 ?? -1 }
                // Each window's tokens are the sentence's from `start` on.
                if window.ids != expected.ids || words != expected.word_ids || Array(window.ids.dropFirst().dropLast()) != Array(full.ids[(start + 1)..<(start + 1 + window.count - 2)]) {
                    same = false
                }
            }
            if !same {
                windowFailures += 1
                if windowFailures <= 3 { Issue.record("windows \(index): ours \(ours.map(\.encoding.ids)) vs \(item.windows.map(\.ids))") }
            }
        }
        #expect(windowFailures == 0 && file.windows.count == 1000, "\(windowFailures) of \(file.windows.count) sentences differ")
    }
}

@Suite struct VocabularyTests {
    @Test func rejectsInvalidUTF8() {
        #expect(throws: TokenizerError.self) { try Vocabulary(data: Data([0x61, 0x0a, 0xff, 0xfe, 0x0a])) }
    }

    @Test func rejectsDuplicates() {
        let error = #expect(throws: TokenizerError.self) { try Vocabulary(data: Data("[PAD]\na\nb\na\n".utf8)) }
        #expect(error?.message.contains("appears twice (lines 2 and 4)") == true)
    }

    @Test func composedAndDecomposedFormsAreDifferentTokens() throws {
        let vocabulary = try Vocabulary(tokens: ["\u{e9}", "e\u{301}"])
        #expect(vocabulary.id(of: "\u{e9}") == 0)
        #expect(vocabulary.id(of: "e\u{301}") == 1)
    }

    @Test func aTokenizerNeedsItsSpecialTokens() throws {
        let vocabulary = try Vocabulary(tokens: ["[PAD]", "[CLS]", "[SEP]", "hello"])
        let error = #expect(throws: TokenizerError.self) { try BERTTokenizer(vocabulary: vocabulary) }
        #expect(error?.message.contains("no unknown token \"[UNK]\"") == true)
    }

    @Test func readsCRLFFiles() throws {
        let vocabulary = try Vocabulary(data: Data("[PAD]\r\n[UNK]\r\nx\r\n".utf8))
        #expect(vocabulary.tokens == ["[PAD]", "[UNK]", "x"])
    }

    @Test func theCasedMegatronVocabulary() {
        #expect(Golden.vocabulary.count == 28996)
        #expect(Golden.vocabulary.id(of: "[MASK]") == 103)
        #expect(Golden.vocabulary.id(of: "[CLS]") == 101)
    }
}
