import Foundation
import Testing

/// The task commands end to end on the task fixtures (Tests/MegatronBERTTests/Fixtures/tasks): JSON shapes
/// and field names, JSON Lines streaming from files and standard input, tables, exit codes and messages.
/// The numbers themselves are checked against transformers in MegatronBERTTests.
@Suite struct TaskCommandTests {
    static let models = CLI.fixtures + "/tasks"

    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    /// Each line of JSON Lines output, parsed.
    static func lines(_ text: String) throws -> [Any] {
        try text.split(separator: "\n").map { try json(String($0)) }
    }

    @Test func fillMaskPrintsHFFieldsAsAJSONArray() throws {
        let result = try CLI.run(["fill-mask", "--model", Self.models + "/pretraining", "--json", "--top-k", "3",
                                  "The capital of France is [MASK].", "[MASK] lives in New York and works at [MASK]."])
        #expect(result.status == 0, "\(result.stderr)")
        let outputs = try #require(try Self.json(result.stdout) as? [Any])
        #expect(outputs.count == 2)
        let single = try #require(outputs[0] as? [[String: Any]])
        #expect(single.count == 3)
        #expect(Set(single[0].keys) == ["score", "token", "token_str", "sequence"])
        #expect(single[0]["token_str"] as? String == "John")
        #expect(single[0]["sequence"] as? String == "The capital of France is John.")
        let double = try #require(outputs[1] as? [[[String: Any]]])
        #expect(double.count == 2, "one list per mask")
    }

    @Test func fillMaskReadsTextLinesFromStandardInputAndPrintsATable() throws {
        let result = try CLI.run(["fill-mask", "--model", Self.models + "/pretraining", "--top-k", "1"],
                                 stdin: "The capital of France is [MASK].\nParis is a [MASK] .\n")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("The capital of France is [MASK].\n  1. 0.1978  John"), "\(result.stdout)")
        #expect(result.stdout.contains("Paris is a [MASK] ."))
    }

    @Test func inputFilesStreamJSONLinesInInputOrder() throws {
        let path = CLI.temporaryPath("texts.jsonl")
        let words = ["Paris", "France", "Europe", "Google", "York", "river", "city"]
        let texts = (0..<150).map { $0 % 3 == 0 ? "John Smith lives in New York and works at Google and Paris [MASK] ." : "[MASK] " + words[$0 % 7] }
        let body = texts.map { #"{"text": "\#($0)"}"# }.joined(separator: "\n") + "\n\n"
        try body.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try CLI.run(["fill-mask", "--model", Self.models + "/pretraining", "--input", path, "--json",
                                  "--batch-size", "4", "--top-k", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let outputs = try Self.lines(result.stdout)
        #expect(outputs.count == texts.count)
        for (output, text) in zip(outputs, texts) {
            let sequence = try #require((output as? [[String: Any]])?.first?["sequence"] as? String)
            #expect(sequence.hasSuffix(text.hasPrefix("[MASK]") ? String(text.dropFirst(7)) : "."), "\(sequence) for \(text)")
        }
    }

    @Test func aBadInputLineStopsWithItsNumber() throws {
        let result = try CLI.run(["embed", "--model", Self.models + "/embedding", "--input", "-", "--json"],
                                 stdin: "{\"text\": \"Paris\"}\n{\"txt\": \"John\"}\n")
        #expect(result.status != 0)
        #expect(result.stderr.contains("standard input:2: needs a string \"text\""), "\(result.stderr)")
        let notJSON = try CLI.run(["embed", "--model", Self.models + "/embedding", "--input", "-"], stdin: "Paris\n")
        #expect(notJSON.status != 0)
        #expect(notJSON.stderr.contains("standard input:1: invalid JSON: unexpected 'P' where a value should be"), "\(notJSON.stderr)")
        let notObject = try CLI.run(["embed", "--model", Self.models + "/embedding", "--input", "-"], stdin: "[1]\n")
        #expect(notObject.stderr.contains("standard input:1: not a JSON object"), "\(notObject.stderr)")
    }

    @Test func embedWritesVectors() throws {
        let result = try CLI.run(["embed", "--model", Self.models + "/embedding", "--input", "-", "--json", "--normalize",
                                  "--pooling", "cls"], stdin: "{\"text\": \"Paris\"}\n{\"text\": \"John lives in Paris .\"}\n")
        #expect(result.status == 0, "\(result.stderr)")
        let outputs = try Self.lines(result.stdout)
        #expect(outputs.count == 2)
        for output in outputs {
            let vector = try #require((output as? [String: Any])?["embedding"] as? [Double])
            #expect(vector.count == 32)
            #expect(abs(vector.map { $0 * $0 }.reduce(0, +) - 1) < 1e-4)
        }
        let similarity = try CLI.run(["similarity", "--model", Self.models + "/embedding", "--json", "Paris is big .", "Paris is big .", "John"])
        #expect(similarity.status == 0, "\(similarity.stderr)")
        let scores = try #require(try Self.json(similarity.stdout) as? [[String: Any]])
        #expect(abs((scores[0]["similarity"] as? Double ?? 0) - 1) < 1e-5)
        #expect(scores[1]["text"] as? String == "John")
    }

    @Test func sentenceTasksPrintTheirFields() throws {
        let nsp = try CLI.run(["nsp", "--model", Self.models + "/pretraining", "--json", "John lives in Paris .", "It is the capital of France ."])
        #expect(nsp.status == 0, "\(nsp.stderr)")
        let next = try #require((try Self.json(nsp.stdout) as? [[String: Any]])?.first)
        #expect(abs((next["is_next_probability"] as? Double ?? 0) - 0.11587924) < 1e-4)
        #expect(next["is_next"] as? Bool == false)

        let classify = try CLI.run(["classify", "--model", Self.models + "/classification", "--json", "--top-k", "0",
                                    "--pair", "John Smith .", "Who lives in Paris ?"])
        #expect(classify.status == 0, "\(classify.stderr)")
        let labels = try #require((try Self.json(classify.stdout) as? [[[String: Any]]])?.first)
        #expect(labels.map { $0["label"] as? String } == ["neutral", "negative", "positive"])

        let choice = try CLI.run(["multiple-choice", "--model", Self.models + "/multiple-choice", "--json",
                                  "--prompt", "John lives in", "Paris .", "New York .", "the river ."])
        #expect(choice.status == 0, "\(choice.stderr)")
        let ranked = try #require((try Self.json(choice.stdout) as? [[[String: Any]]])?.first)
        #expect(ranked.map { $0["index"] as? Int } == [2, 0, 1])
        #expect(Set(ranked[0].keys) == ["index", "choice", "score", "logit"])
    }

    @Test func nerAndQAPrintSpans() throws {
        let ner = try CLI.run(["ner", "--model", Self.models + "/ner", "--json", "--aggregation", "none", "John Smith lives in New York ."])
        #expect(ner.status == 0, "\(ner.stderr)")
        let tokens = try #require((try Self.json(ner.stdout) as? [[[String: Any]]])?.first)
        #expect(tokens.allSatisfy { Set($0.keys) == ["entity", "score", "index", "word", "start", "end"] })
        let grouped = try CLI.run(["ner", "--model", Self.models + "/ner", "--json", "John Smith lives in New York ."])
        let groups = try #require((try Self.json(grouped.stdout) as? [[[String: Any]]])?.first)
        #expect(groups.allSatisfy { Set($0.keys) == ["entity_group", "score", "word", "start", "end"] })

        let path = CLI.temporaryPath("qa.jsonl")
        try #"{"question": "Where is Paris ?", "context": "Paris is a city in France ."}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let qa = try CLI.run(["qa", "--model", Self.models + "/qa", "--input", path, "--json", "--top-k", "2"])
        #expect(qa.status == 0, "\(qa.stderr)")
        let answers = try #require(try Self.lines(qa.stdout).first as? [[String: Any]])
        #expect(answers.map { $0["answer"] as? String } == ["is a", "is a city"])
        #expect(answers.first?["start"] as? Int == 6)
        let table = try CLI.run(["qa", "--model", Self.models + "/qa", "--question", "Where is Paris ?",
                                 "--context", "Paris is a city in France .", "--allow-no-answer", "--top-k", "5"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("(no answer)"))
    }

    @Test(arguments: [
        (["fill-mask", "--model", "pretraining", "No mask here."], "no [MASK] in \"No mask here.\""),
        (["fill-mask", "--model", "classification", "[MASK]"], "fill-mask needs a model with a MegatronBertForPreTraining or MegatronBertForMaskedLM head"),
        (["ner", "--model", "pretraining", "John"], "NER needs a model with a MegatronBertForTokenClassification head"),
        (["embed", "--model", "ner", "--pooling", "pooler", "x"], "has no pooler"),
        (["fill-mask", "--model", "pretraining", "--device", "cuda:99", "[MASK]"], "--device cuda:99: CUDA unavailable: "),
        (["fill-mask", "--model", "missing", "[MASK]"], "does not exist"),
        (["nsp", "--model", "pretraining", "only one"], "give two texts"),
        (["qa", "--model", "qa", "--question", "Who?"], "give --question and --context together"),
        (["classify", "--model", "classification", "--batch-size", "0", "x"], "--batch-size must be at least 1"),
        (["fill-mask", "--model", "pretraining", "--input", "/nonexistent.jsonl"], "cannot read the input file"),
        (["ner", "--model", "ner", "--ignore-labels", "O,PERSON", "John"], "unknown label \"PERSON\""),
        (["similarity", "--model", "embedding", "--input", "x.jsonl", "a", "b"], "similarity takes its texts as arguments"),
    ])
    func mistakesExitNonZeroWithAMessage(arguments: [String], message: String) throws {
        var filled = arguments
        if let i = filled.firstIndex(of: "--model") { filled[i + 1] = Self.models + "/" + filled[i + 1] }
        let result = try CLI.run(filled)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test func halfPrecisionWeightsGiveNearlyTheSameVectors() throws {
        let texts = ["Paris is the capital of France .", "John works at Google ."]
        let fp32 = try CLI.run(["embed", "--model", Self.models + "/embedding", "--json"] + texts)
        let fp16 = try CLI.run(["embed", "--model", Self.models + "/embedding", "--json", "--dtype", "fp16"] + texts)
        #expect(fp16.status == 0, "\(fp16.stderr)")
        let a = try #require(try Self.json(fp32.stdout) as? [[String: [Double]]])
        let b = try #require(try Self.json(fp16.stdout) as? [[String: [Double]]])
        for (x, y) in zip(a, b) {
            let (u, v) = (x["embedding"]!, y["embedding"]!)
            let dot: Double = zip(u, v).map(*).reduce(0, +)
            let norms: Double = u.map { $0 * $0 }.reduce(0, +) * v.map { $0 * $0 }.reduce(0, +)
            let cosine = dot / norms.squareRoot()
            #expect(cosine > 0.999 && cosine < 1, "fp16 weights are rounded, so close but not identical: \(cosine)")
        }
    }

    @Test func invalidUTF8IsReportedByLine() throws {
        let path = CLI.temporaryPath("bad.jsonl")
        var bytes = Array(#"{"text": "Paris"}"#.utf8) + [0x0A]
        bytes += Array(#"{"text": "Par"#.utf8) + [0xFF, 0xFE] + Array(#"is"}"#.utf8) + [0x0A]
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let result = try CLI.run(["embed", "--model", Self.models + "/embedding", "--input", path, "--json"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(path):2: invalid JSON: invalid UTF-8 (byte 0xff) (at byte 14)"), "\(result.stderr)")
    }

    @Test func truncationIsAWarningUnlessQuiet() throws {
        let long = "[MASK] " + Array(repeating: "John", count: 40).joined(separator: " ")
        let loud = try CLI.run(["fill-mask", "--model", Self.models + "/pretraining", long])
        #expect(loud.status == 0)
        #expect(loud.stderr.contains("warning: an input over the model's 24 tokens was truncated to them"), "\(loud.stderr)")
        let quiet = try CLI.run(["fill-mask", "--model", Self.models + "/pretraining", "--quiet", long])
        #expect(quiet.status == 0)
        #expect(quiet.stderr.isEmpty)
    }
}
