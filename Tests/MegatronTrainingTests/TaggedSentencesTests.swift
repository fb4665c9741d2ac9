import Foundation
import Testing
@testable import MegatronTraining

@Suite struct TaggedSentencesTests {
    static func file(_ name: String, _ contents: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tagged-\(UUID().uuidString)-\(name)").path
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// CoNLL-2003's layout (word, POS, chunk, NER): -DOCSTART- skipped, blank lines split sentences (several in a row
    /// too), the tag from the last column unless told, each sentence located at its first word's line.
    @Test func conllSentences() throws {
        let path = try Self.file("a.conll", """
            -DOCSTART- -X- -X- O

            EU NNP B-NP B-ORG
            rejects VBZ B-VP O
            German JJ B-NP B-MISC

            \r
            Peter NNP B-NP B-PER
            Blackburn NNP I-NP I-PER
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sentences = try TaggedSentences.read(path)
        #expect(sentences.map(\.words) == [["EU", "rejects", "German"], ["Peter", "Blackburn"]])
        #expect(sentences.map(\.tags) == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"]])
        #expect(sentences.map(\.location) == ["\(path):3", "\(path):8"])
        let chunks = try TaggedSentences.read(path, tokenColumn: 1, tagColumn: 3)
        #expect(chunks[1].tags == ["B-NP", "I-NP"])  // the column asked for
        #expect(try TaggedSentences.read(path, tokenColumn: 2, tagColumn: 4)[0].words == ["NNP", "VBZ", "JJ"])
    }

    /// Bad CoNLL: a line with another column count, a tag not in any scheme, a column past the line — each an error
    /// naming the file and line.
    @Test(arguments: [("EU NNP B-ORG\nrejects O\n", ":2", "columns"), ("EU PER\n", ":1", "not a NER tag"),
                      ("EU B-ORG\nx X-ORG\n", ":2", "not a NER tag")])
    func badConll(contents: String, line: String, words: String) throws {
        let path = try Self.file("bad.conll", contents)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try TaggedSentences.read(path)
            Issue.record("read \(contents)")
        } catch let error as TrainingError {
            #expect(error.description.contains(path + line), "\(error)")
            #expect(error.description.contains(words), "\(error)")
        }
        #expect(throws: TrainingError.self) { try TaggedSentences.read(path, tokenColumn: 5) }
    }

    /// JSON Lines: tokens and tags; text and character spans (scalars, as Python counts them) → words tagged IOB2.
    @Test func jsonLines() throws {
        let path = try Self.file("a.jsonl", """
            {"tokens": ["Angela", "Merkel", "spoke"], "tags": ["B-PER", "I-PER", "O"]}
            {"text": "Zürich  is in Switzerland, said Ana María López.", "entities": [{"start": 0, "end": 6, "label": "LOC"}, {"start": 32, "end": 48, "label": "PER"}]}
            {"text": "nothing here"}
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sentences = try TaggedSentences.read(path)
        #expect(sentences[0].words == ["Angela", "Merkel", "spoke"] && sentences[0].tags == ["B-PER", "I-PER", "O"])
        #expect(sentences[1].words == ["Zürich", "is", "in", "Switzerland,", "said", "Ana", "María", "López."])
        #expect(sentences[1].tags == ["B-LOC", "O", "O", "O", "O", "B-PER", "I-PER", "I-PER"])
        #expect(sentences[2].tags == ["O", "O"])
    }

    @Test(arguments: [
        (#"{"text": "Ana María", "entities": [{"start": 1, "end": 9, "label": "PER"}]}"#, "word boundaries"),
        (#"{"text": "Ana María", "entities": [{"start": 0, "end": 9, "label": "PER"}, {"start": 4, "end": 9, "label": "X"}]}"#, "overlaps"),
        (#"{"tokens": ["a", "b"], "tags": ["O"]}"#, "one tag per token"),
        (#"{"tokens": ["a"], "tags": [3]}"#, "names, not class numbers"),
        (#"{"tokens": ["a"], "tags": ["LOC"]}"#, "not a NER tag"),
        ("[1, 2]", "not a JSON object"),
    ])
    func badJSONLines(line: String, words: String) throws {
        let path = try Self.file("bad.jsonl", "\n" + line + "\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try TaggedSentences.read(path)
            Issue.record("read \(line)")
        } catch let error as TrainingError {
            #expect(error.description.contains(path + ":2") && error.description.contains(words), "\(error)")
        }
    }

    @Test func schemes() {
        #expect(TagScheme.detect([["B-PER", "I-PER", "O", "B-LOC"]]) == .iob2)
        #expect(TagScheme.detect([["I-PER", "I-PER", "O", "B-PER"]]) == .iob1)
        #expect(TagScheme.detect([["B-PER", "I-LOC"]]) == .iob1)
        #expect(TagScheme.detect([["B-PER", "E-PER", "S-LOC"]]) == .iobes)
    }

    /// run_ner's alignment (Fixtures/token-alignment.json, scripts/make_ner_fixtures.py: 2,000 sentences of random
    /// word ids — words of 0 to 3 tokens, cut or not — and tags): the same labels, with and without label_all_tokens.
    @Test func alignmentMatchesRunNER() throws {
        struct Case: Decodable { var word_ids: [Int]; var tags: [String]; var first: [Int]; var all: [Int] }
        struct File: Decodable { var labels: [String]; var cases: [Case] }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: GradientTests.fixtures + "/token-alignment.json")))
        #expect(file.cases.count == 2000)
        let inside = TokenAlignment.insideLabels(file.labels)
        for item in file.cases {
            let words = item.word_ids.map { $0 < 0 ? nil : $0 }, labels = item.tags.map { file.labels.firstIndex(of: $0)! }
            #expect(TokenAlignment.targets(wordIDs: words, labels: labels, labelAllTokens: false, inside: inside) == item.first.map(Double.init))
            #expect(TokenAlignment.targets(wordIDs: words, labels: labels, labelAllTokens: true, inside: inside) == item.all.map(Double.init))
        }
    }
}
