import Foundation
import Testing
@testable import BERTTokenizer

/// Fixtures/golden.json: BertTokenizerFast (Rust `tokenizers`) on a hard corpus with the cased
/// Megatron-BERT vocabulary (Fixtures/vocab.txt), written by scripts/make_tokenizer_fixtures.py.
struct GoldenCase: Decodable, Sendable, CustomStringConvertible {
    var text: String
    var pair: String?
    var do_lower_case: Bool
    var truncation: String?
    var max_length: Int?
    var error: String?
    var input_ids: [Int]?
    var token_type_ids: [Int]?
    var special_tokens_mask: [Int]?
    var offsets: [[Int]]?
    var word_ids: [Int?]?
    var tokens: [String]?
    var decoded: String?
    var decoded_skip_special: String?

    var description: String {
        "\(text.debugDescription)\(pair.map { " + \($0.debugDescription)" } ?? "") lower=\(do_lower_case) \(truncation ?? "") \(max_length.map(String.init) ?? "")"
    }
}

struct OverflowCase: Decodable, Sendable, CustomStringConvertible {
    struct Window: Decodable, Sendable {
        var input_ids: [Int]
        var token_type_ids: [Int]
        var offsets: [[Int]]
        var word_ids: [Int?]
    }
    var text: String
    var pair: String?
    var truncation: String
    var max_length: Int
    var stride: Int
    var windows: [Window]

    var description: String { "\(truncation) max \(max_length) stride \(stride) pair: \(pair != nil)" }
}

enum Golden {
    static let directory = Bundle.module.path(forResource: "Fixtures", ofType: nil)!
    static let vocabulary = try! Vocabulary(path: directory + "/vocab.txt")
    struct Added: Decodable {
        struct Case: Decodable {
            var text: String
            var input_ids: [Int]
            var offsets: [[Int]]
            var decoded_skip_special: String
        }
        var tokens: [String]
        var special: [Bool]
        var cases: [Case]
    }
    struct File: Decodable {
        var cases: [GoldenCase]
        var overflow: [OverflowCase]
        var added: Added
    }
    static let file: File = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: directory + "/golden.json"))
        return try! JSONDecoder().decode(File.self, from: data)
    }()
    static let cases = file.cases
    static let overflow = file.overflow
}

@Suite struct GoldenTests {
    @Test(arguments: Golden.cases)
    func matchesHuggingFace(_ golden: GoldenCase) throws {
        let tokenizer = try BERTTokenizer(vocabulary: Golden.vocabulary, doLowerCase: golden.do_lower_case)
        let truncation = golden.truncation.flatMap(TruncationStrategy.init(rawValue:)) ?? .longestFirst
        if golden.error != nil {
            #expect(throws: TokenizerError.self) {
                try tokenizer.encode(golden.text, pair: golden.pair, maxLength: golden.max_length, truncation: truncation)
            }
            return
        }
        let encoding = try tokenizer.encode(golden.text, pair: golden.pair, maxLength: golden.max_length, truncation: truncation)
        #expect(encoding.tokens == golden.tokens)
        #expect(encoding.ids == golden.input_ids)
        #expect(encoding.typeIDs == golden.token_type_ids)
        #expect(encoding.specialTokensMask == golden.special_tokens_mask)
        #expect(encoding.offsets.map { [$0.lowerBound, $0.upperBound] } == golden.offsets)
        #expect(encoding.wordIDs == golden.word_ids)
        if let decoded = golden.decoded {
            #expect(try tokenizer.decode(encoding.ids) == decoded)
            #expect(try tokenizer.decode(encoding.ids, skipSpecialTokens: true) == golden.decoded_skip_special)
        }
    }

    @Test(arguments: Golden.overflow)
    func overflowWindowsMatchHuggingFace(_ golden: OverflowCase) throws {
        let tokenizer = try BERTTokenizer(vocabulary: Golden.vocabulary)
        let windows = try tokenizer.encodeWindows(golden.text, pair: golden.pair, maxLength: golden.max_length,
                                                  stride: golden.stride, truncation: TruncationStrategy(rawValue: golden.truncation)!)
        #expect(windows.map(\.ids) == golden.windows.map(\.input_ids))
        #expect(windows.map(\.typeIDs) == golden.windows.map(\.token_type_ids))
        #expect(windows.map { $0.offsets.map { [$0.lowerBound, $0.upperBound] } } == golden.windows.map(\.offsets))
        #expect(windows.map(\.wordIDs) == golden.windows.map(\.word_ids))
    }

    /// Tokens added after the vocabulary (one ordinary, one special) are matched whole, as HF does.
    @Test func addedTokensMatchHuggingFace() throws {
        let added = Golden.file.added
        let vocabulary = try Vocabulary(tokens: Golden.vocabulary.tokens + added.tokens)
        let tokenizer = try BERTTokenizer(vocabulary: vocabulary,
                                          addedTokens: zip(added.tokens, added.special).map { AddedToken(content: $0, special: $1) },
                                          modelVocabularyCount: Golden.vocabulary.count)
        for golden in added.cases {
            let encoding = try tokenizer.encode(golden.text)
            #expect(encoding.ids == golden.input_ids, "\(golden.text)")
            #expect(encoding.offsets.map { [$0.lowerBound, $0.upperBound] } == golden.offsets)
            #expect(try tokenizer.decode(encoding.ids, skipSpecialTokens: true) == golden.decoded_skip_special)
        }
    }
}
