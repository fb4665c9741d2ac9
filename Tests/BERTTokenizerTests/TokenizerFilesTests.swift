import Foundation
import Testing
@testable import BERTTokenizer
import TestSupport

@Suite struct TokenizerFilesTests {
    static func directory(_ files: [String: String]) throws -> String {
        let dir = Scratch.path("tok")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, contents) in files { try contents.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    @Test func vocabTxtWithConfig() throws {
        let dir = try Self.directory(["vocab.txt": "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n",
                                      "tokenizer_config.json": #"{"do_lower_case": true, "model_max_length": 512, "mask_token": {"content": "[MASK]"}}"#])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tokenizer = try BERTTokenizer(directory: dir)
        #expect(tokenizer.modelMaxLength == 512)
        #expect(try tokenizer.encode("HELLO Worlds").tokens == ["[CLS]", "hello", "world", "##s", "[SEP]"])
    }

    @Test func casedByDefaultAndTheSentinelLengthIsIgnored() throws {
        let dir = try Self.directory(["vocab.txt": "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n",
                                      "tokenizer_config.json": #"{"model_max_length": 1000000000000000019884624838656}"#])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tokenizer = try BERTTokenizer(directory: dir)
        #expect(tokenizer.modelMaxLength == nil)
        #expect(try tokenizer.encode("Hello hello").tokens == ["[CLS]", "[UNK]", "hello", "[SEP]"])
    }

    @Test func tokenizerJSONWins() throws {
        let json = ###"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hi": 4}}, "normalizer": {"type": "BertNormalizer", "lowercase": true, "strip_accents": null, "handle_chinese_chars": true, "clean_text": true}, "pre_tokenizer": {"type": "BertPreTokenizer"}}"###
        let dir = try Self.directory(["tokenizer.json": json, "vocab.txt": "[UNK]\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try BERTTokenizer(directory: dir).encode("HÍ").tokens == ["[CLS]", "hi", "[SEP]"])
    }

    @Test func addedTokensFromTokenizerJSON() throws {
        let json = ###"{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hi": 4}}, "added_tokens": [{"id": 0, "content": "[PAD]", "special": true, "normalized": false}, {"id": 5, "content": "<x>", "special": false, "normalized": false}]}"###
        let dir = try Self.directory(["tokenizer.json": json])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tokenizer = try BERTTokenizer(directory: dir)
        #expect(try tokenizer.encode("hi<x>hi").ids == [2, 4, 5, 4, 3])
        #expect(try tokenizer.encode("<x>").tokens == ["[CLS]", "<x>", "[SEP]"])
    }

    @Test(arguments: [
        (["tokenizer.json": #"{"model": {"type": "BPE", "vocab": {}}}"#], "not a WordPiece tokenizer"),
        (["tokenizer.json": #"{"model": {"type": "WordPiece", "vocab": {"a": 0, "b": 5}}}"#], "model.vocab ids must be"),
        (["tokenizer.json": "not json"], "not a JSON object"),
        ([:], "no tokenizer in"),
        (["tokenizer.json": ###"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3}}, "added_tokens": [{"id": 9, "content": "<y>", "normalized": false}]}"###], "without gaps"),
        (["tokenizer.json": ###"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3}}, "added_tokens": [{"id": 4, "content": "<y>", "normalized": true}]}"###], "only normalized: false"),
        (["tokenizer.json": ###"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3}}, "added_tokens": [{"id": 4, "content": "<y>", "lstrip": true, "normalized": false}]}"###], "uses lstrip"),
    ])
    func badFiles(files: [String: String], message: String) throws {
        let dir = try Self.directory(files)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = #expect(throws: TokenizerError.self) { try BERTTokenizer(directory: dir) }
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }
}
