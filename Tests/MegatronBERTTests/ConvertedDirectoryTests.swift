import BERTTokenizer
import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel
import TestSupport

/// Writing a converted directory: inputs checked first, all or nothing, never over someone else's files, one
/// writer at a time.
@Suite struct ConvertedDirectoryTests {
    static func converted() throws -> MegatronConversion.Result {
        try MegatronConversion.load(path: Fixtures.root + "/megatron/v2-new-names.pt")
    }

    static func temporary(_ name: String) -> String {
        Scratch.path(name)
    }

    /// A cased vocabulary of `count` tokens with BERT's special tokens (one file per kind, rewritten by each run,
    /// so runs leave no more than these few files behind).
    static func vocabulary(_ count: Int, lowercase: Bool = false) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("megatron-bert-test-vocab-\(count)\(lowercase ? "-lower" : "").txt").path
        let words = (5..<count).map { lowercase ? "word\($0)" : "Word\($0)" }
        try (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words).joined(separator: "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aVocabularyLargerThanTheEmbeddingIsRefusedBeforeWriting() throws {
        let directory = Self.temporary("converted")
        #expect {
            try Self.converted().write(to: directory, vocabulary: try Self.vocabulary(60))
        } throws: { "\($0)".contains("has 60 tokens but the checkpoint has only 53 embedding rows") }
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(throws: ModelError.self) { try Self.converted().write(to: directory, vocabulary: "/nonexistent/vocab.txt") }
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test func aSecondConversionReplacesTheWholeDirectory() throws {
        let directory = Self.temporary("converted")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.converted().write(to: directory, vocabulary: try Self.vocabulary(50))
        #expect(FileManager.default.fileExists(atPath: directory + "/vocab.txt"))
        // Converted again without a vocabulary: the old vocab.txt must not stay beside the new weights.
        let (casing, _) = try Self.converted().write(to: directory, stated: .stated(lowercase: true, by: "--lowercase"))
        #expect(casing.lowercase)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
                == ["config.json", "model.safetensors", "tokenizer_config.json"])
        let parent = (directory as NSString).deletingLastPathComponent
        let name = (directory as NSString).lastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(".\(name).partial") || $0.hasPrefix(".\(name).old") }.isEmpty)
        _ = try MegatronBERTModel(path: directory)
    }

    @Test func aDirectoryWithOtherFilesIsNotReplaced() throws {
        let directory = Self.temporary("converted")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "mine".write(toFile: directory + "/notes.txt", atomically: true, encoding: .utf8)
        #expect { try Self.converted().write(to: directory) } throws: { "\($0)".contains("notes.txt") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["notes.txt"])
        let file = Self.temporary("file")
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        #expect { try Self.converted().write(to: file) } throws: { "\($0)".contains("is not a directory") }
    }

    @Test func aConcurrentConversionFailsAtOnce() throws {
        let directory = Self.temporary("converted")
        let parent = (directory as NSString).deletingLastPathComponent, name = (directory as NSString).lastPathComponent
        let held = try DirectoryLock(parent + "/.\(name).lock", for: directory)
        #expect { try Self.converted().write(to: directory) } throws: { "\($0)".contains("another conversion is writing") }
        held.release()
        try Self.converted().write(to: directory)
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: parent + "/.\(name).lock")
    }

    /// The directory's casing reaches a tokenizer loaded with `--vocab` later; without a setting, the vocabulary decides.
    @Test func aSeparateVocabularyKeepsTheDirectorysCasing() throws {
        let directory = Self.temporary("converted")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.converted().write(to: directory, stated: .stated(lowercase: true, by: "test"))
        let cased = try Self.vocabulary(50)
        let pipeline = try Pipeline(path: directory, vocabulary: cased)
        #expect(try pipeline.tokenizer.encode("Word7").tokens == ["[CLS]", "[UNK]", "[SEP]"])  // lowercased: "word7"
        let plain = Self.temporary("plain")
        try FileManager.default.createDirectory(atPath: plain, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: plain) }
        let uncased = try Self.vocabulary(50, lowercase: true)
        #expect(try BERTTokenizer(directory: plain, vocabularyFile: uncased).encode("Word7").tokens == ["[CLS]", "word7", "[SEP]"])
        #expect(try BERTTokenizer(directory: plain, vocabularyFile: cased).encode("Word7").tokens == ["[CLS]", "Word7", "[SEP]"])
    }
}
