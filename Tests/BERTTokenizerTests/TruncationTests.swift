import Foundation
import Testing
import TensorFiles
@testable import BERTTokenizer

/// Fixtures/truncation.zip: 20,000 random cases (single texts and pairs from a mixed-script word pool, every
/// truncation strategy, max_length 5…80, with and without stride and overflowing windows, with and without
/// padding), 3,000 more cut on the left (`truncation_side="left"`, one window each), and what BertTokenizerFast answered, written by scripts/make_truncation_fixtures.py (transformers
/// 5.24.0, tokenizers 0.23.3). Each text's tokens are stored once; a window is the slices of the two texts it holds
/// and its padded length (the generator checks that this rebuilds HF's window exactly).
enum TruncationFixture {
    struct Text: Decodable {
        var text: String
        var ids: [Int]
        var offsets: [Int]
    }
    struct Case: Decodable {
        var text: Int
        var pair: Int?
        var truncation: String
        /// "left" for the cases cut on the left; nil: right.
        var side: String?
        var max_length: Int
        var overflow: Bool
        var stride: Int
        var padding: String?
        var pad_to_multiple_of: Int?
        var error: String?
        /// [first start, first end, second start, second end, padded length] per window.
        var windows: [[Int]]?
    }
    struct Special: Decodable { var cls: Int, sep: Int, pad: Int }
    struct File: Decodable {
        var generator: String
        var special: Special
        var texts: [Text]
        var cases: [Case]
    }

    static let file: File = {
        let path = Golden.directory + "/truncation.zip"
        let mapped = try! MappedFile(path: path)
        let zip = try! ZipArchive(bytes: mapped.bytes, path: path)
        let contents = try! zip.contents(of: zip.entry(named: "truncation.json")!)
        return try! JSONDecoder().decode(File.self, from: Data(contents.bytes))
    }()

    /// What HF returned for one window, rebuilt: `[CLS] A[a] [SEP] (B[b] [SEP]) [PAD]…`.
    static func expected(_ row: [Int], first: Text, second: Text?) -> (ids: [Int], types: [Int], mask: [Int], offsets: [Int]) {
        let s = file.special
        var ids = [s.cls] + first.ids[row[0]..<row[1]] + [s.sep]
        var offsets = [0, 0] + first.offsets[(2 * row[0])..<(2 * row[1])] + [0, 0]
        var types = [Int](repeating: 0, count: ids.count)
        if let second {
            ids += second.ids[row[2]..<row[3]] + [s.sep]
            offsets += second.offsets[(2 * row[2])..<(2 * row[3])] + [0, 0]
            types += [Int](repeating: 1, count: row[3] - row[2] + 1)
        }
        let padding = row[4] - ids.count
        let mask = [Int](repeating: 1, count: ids.count) + [Int](repeating: 0, count: padding)
        ids += [Int](repeating: s.pad, count: padding)
        types += [Int](repeating: 0, count: padding)
        offsets += [Int](repeating: 0, count: 2 * padding)
        return (ids, types, mask, offsets)
    }
}

@Suite struct TruncationTests {
    /// Every case gives HF's windows (ids, type ids, attention mask, offsets), or an error where HF has one.
    @Test func twentyThreeThousandRandomCasesMatchHuggingFace() throws {
        let fixture = TruncationFixture.file
        #expect(fixture.cases.count >= 23_000)
        #expect(fixture.cases.filter { $0.side == "left" && $0.windows != nil }.count > 2_000)
        let tokenizer = try BERTTokenizer(vocabulary: Golden.vocabulary)
        var failures: [String] = []
        for (n, c) in fixture.cases.enumerated() {
            let first = fixture.texts[c.text], second = c.pair.map { fixture.texts[$0] }
            let strategy = try #require(TruncationStrategy(rawValue: c.truncation))
            let side = try #require(TruncationSide(rawValue: c.side ?? "right"))
            let what = "case \(n): \(c.truncation) \(side) max \(c.max_length) stride \(c.stride) overflow \(c.overflow) pair \(second != nil)"
            let result = Result {
                c.overflow
                    ? try tokenizer.encodeWindows(first.text, pair: second?.text, maxLength: c.max_length, stride: c.stride,
                                                  truncation: strategy)
                    : [try tokenizer.encode(first.text, pair: second?.text, maxLength: c.max_length, truncation: strategy, side: side)]
            }
            switch (result, c.windows) {
            case (.failure(let error), nil):
                if c.error == "second_missing", !"\(error)".contains("needs a second text") {
                    failures.append("\(what): HF says the second sequence is missing, we say: \(error)")
                }
            case (.failure(let error), _?):
                failures.append("\(what): HF encodes it, we throw: \(error)")
            case (.success, nil):
                failures.append("\(what): HF refuses it (\(c.error ?? "?")), we encode it")
            case (.success(var windows), let rows?):
                switch c.padding {
                case "longest": windows = tokenizer.pad(windows, multiple: c.pad_to_multiple_of)
                case "max_length": windows = tokenizer.pad(windows, to: c.max_length, multiple: c.pad_to_multiple_of)
                default: break
                }
                guard windows.count == rows.count else {
                    failures.append("\(what): \(windows.count) windows, HF has \(rows.count)")
                    continue
                }
                for (k, (window, row)) in zip(windows, rows).enumerated() {
                    let e = TruncationFixture.expected(row, first: first, second: second)
                    if window.ids != e.ids { failures.append("\(what) window \(k): ids \(window.ids) vs HF \(e.ids)") }
                    if window.typeIDs != e.types { failures.append("\(what) window \(k): type ids differ") }
                    if window.attentionMask != e.mask { failures.append("\(what) window \(k): attention mask differs") }
                    if window.offsets.flatMap({ [$0.lowerBound, $0.upperBound] }) != e.offsets {
                        failures.append("\(what) window \(k): offsets differ")
                    }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) differences, first: \(failures.prefix(10).joined(separator: "\n"))")
    }

    /// The issue's example: budget 21, a 21-token text and an 18-token pair → HF keeps 11 + 10.
    @Test func theOddTokenGoesToTheLongerText() throws {
        let plan = try Truncation(first: 21, second: 18, maxLength: 24, strategy: .longestFirst, stride: 0, overflow: false)
        #expect(plan.windows[0].first == 0..<11)
        #expect(plan.windows[0].second == 0..<10)
        let tie = try Truncation(first: 20, second: 20, maxLength: 24, strategy: .longestFirst, stride: 0, overflow: false)
        #expect(tie.windows[0].first == 0..<10 && tie.windows[0].second == 0..<11)
        let shortFits = try Truncation(first: 4, second: 30, maxLength: 24, strategy: .longestFirst, stride: 0, overflow: false)
        #expect(shortFits.windows[0].first == 0..<4 && shortFits.windows[0].second == 0..<17)
    }

    @Test func onlySecondWithoutASecondTextSaysSo() throws {
        let tokenizer = try BERTTokenizer(vocabulary: Golden.vocabulary)
        let text = String(repeating: "word ", count: 40)
        #expect { try tokenizer.encode(text, maxLength: 16, truncation: .onlySecond) } throws: {
            "\($0)".contains("needs a second text, and there is none")
        }
        // A text that fits needs no second text, as in HF.
        #expect(try tokenizer.encode("short", maxLength: 16, truncation: .onlySecond).count == 3)
    }

    @Test func windowsThatWouldOverflowMaxLengthAreRefused() throws {
        // HF would cut the shorter text to nothing and then put all of it into one overflowing window.
        #expect(throws: TokenizerError.self) {
            try Truncation(first: 10, second: 10, maxLength: 4, strategy: .longestFirst, stride: 0, overflow: true)
        }
        // Without overflow it is HF's answer: the shorter text is cut to nothing.
        let plan = try Truncation(first: 10, second: 10, maxLength: 4, strategy: .longestFirst, stride: 0, overflow: false)
        #expect(plan.windows[0].first == 0..<0 && plan.windows[0].second == 0..<1)
    }

    @Test func maxLengthBelowTheSpecialTokensNamesTheMinimum() throws {
        let tokenizer = try BERTTokenizer(vocabulary: Golden.vocabulary)
        #expect { try tokenizer.encode("a b c", maxLength: 1) } throws: { "\($0)".contains("use at least 2") }
        #expect { try tokenizer.encode("a b c", pair: "d", maxLength: 2) } throws: { "\($0)".contains("use at least 3") }
        #expect(try tokenizer.encode("a b c", maxLength: 2).tokens == ["[CLS]", "[SEP]"])
    }

    /// Windows of one long text: 126 tokens each, 110 apart, the last ending at the text's last token.
    @Test func windowsOfALongTextCoverItOnce() throws {
        let tokenizer = try BERTTokenizer(vocabulary: Golden.vocabulary)
        let text = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 4000)  // 180 KB, 40k tokens
        let windows = try tokenizer.encodeWindows(text, maxLength: 128, stride: 16)
        #expect(windows.count == 1 + (40_000 - 126 + 109) / 110)  // 1 + ceil((tokens - 126) / 110)
        #expect(windows.dropLast().allSatisfy { $0.count == 128 })
        #expect(windows.last?.byteOffsets.dropLast().last?.upperBound == text.utf8.count - 1)
    }
}
