import Foundation
import Testing
import TensorFiles
import TestSupport

/// Runs the built `megatron-bert` executable the way a user would.
struct CLI {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let fixtures = packageRoot + "/Tests/MegatronBERTTests/Fixtures"

    /// The executable next to the test bundle (SwiftPM builds it because this target depends on it).
    static let executable: String = {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for directory in [here, here.deletingLastPathComponent()] {
            let candidate = directory.appendingPathComponent("megatron-bert").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return packageRoot + "/.build/debug/megatron-bert"
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        let stderrData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
                      stderr: String(decoding: stderrData, as: UTF8.self))
    }

    static func temporaryPath(_ name: String) -> String {
        Scratch.path(name)
    }
}

/// Every expected output (float64) within 1e-4 of the written one.
func expectWritten(_ path: String, matches expectedPath: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let written = try SafeTensorsFile(path: path).tensors
    for (name, reference) in try SafeTensorsFile(path: expectedPath).tensors {
        let actual = try #require(written[name], sourceLocation: sourceLocation)
        #expect(actual.shape == reference.shape, sourceLocation: sourceLocation)
        let worst = zip(actual.toDoubles(), reference.toDoubles()).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-4, "\(name): \(worst)", sourceLocation: sourceLocation)
    }
}

@Suite struct CommandLineTests {
    @Test func forwardWritesEveryOutputUnderHFNames() throws {
        let output = CLI.temporaryPath("out.safetensors")
        let result = try CLI.run(["forward", "--model", CLI.fixtures + "/models/megatron-ForPreTraining",
                                  "--input", CLI.fixtures + "/inputs/batch.json", "--output", output])
        #expect(result.status == 0, "\(result.stderr)")
        let written = try SafeTensorsFile(path: output).tensors
        #expect(Set(written.keys) == ["last_hidden_state", "pooler_output", "prediction_logits", "seq_relationship_logits"])
        try expectWritten(output, matches: CLI.fixtures + "/expected/megatron-ForPreTraining.safetensors")
    }

    /// An NGC-style zip (Megatron-LM format) is converted in memory by --model.
    @Test func forwardTakesAnNGCZipDirectly() throws {
        let output = CLI.temporaryPath("out.safetensors")
        let result = try CLI.run(["forward", "--model", CLI.fixtures + "/megatron/ngc.zip",
                                  "--input", CLI.fixtures + "/inputs/batch.json", "--output", output])
        #expect(result.status == 0, "\(result.stderr)")
        try expectWritten(output, matches: CLI.fixtures + "/expected/megatron-ForPreTraining.safetensors")
    }

    @Test func inspectListsTensorsAndArgs() throws {
        let ngc = try CLI.run(["inspect", CLI.fixtures + "/megatron/ngc.zip"])
        #expect(ngc.status == 0, "\(ngc.stderr)")
        #expect(ngc.stdout.contains("checkpoint_version = 2.0"))
        #expect(ngc.stdout.contains("attn_mask_type = megatron.model.enums.AttnMaskType(1)"))
        #expect(ngc.stdout.contains("model.language_model.embedding.word_embeddings.weight  F32  [53, 30]"))
        let safetensors = try CLI.run(["inspect", CLI.fixtures + "/models/megatron-ForPreTraining-f16/model.safetensors"])
        #expect(safetensors.stdout.contains("bert.encoder.ln.weight  F16  [30]"))
        let bad = try CLI.run(["inspect", CLI.fixtures + "/inputs/batch.json"])
        #expect(bad.status != 0)
    }

    @Test(arguments: ["fp32", "fp16"])
    func convertWritesAHuggingFaceDirectory(dtype: String) throws {
        let output = CLI.temporaryPath("converted")
        // The fixture model has 53 embedding rows: a vocabulary of 50 cased tokens fits it.
        let vocab = CLI.temporaryPath("vocab.txt")
        try (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (5..<50).map { "Word\($0)" }).joined(separator: "\n")
            .write(toFile: vocab, atomically: true, encoding: .utf8)
        let result = try CLI.run(["convert", CLI.fixtures + "/megatron/v1-old-names-legacy.pt", "--output", output,
                                  "--vocab", vocab, "--dtype", dtype])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("MegatronBertForPreTraining, 2 layers, hidden 30, 3 heads"))
        #expect(result.stdout.contains("tokenizer: cased: the checkpoint's args say tokenizer_type BertWordPieceCase"))
        for file in ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"] {
            #expect(FileManager.default.fileExists(atPath: output + "/" + file), "\(file)")
        }
        let weights = try SafeTensorsFile(path: output + "/model.safetensors").tensors
        #expect(weights["bert.encoder.ln.weight"]?.dtype == (dtype == "fp32" ? .float32 : .float16))
        let forward = try CLI.run(["forward", "--model", output, "--input", CLI.fixtures + "/inputs/batch.json",
                                   "--output", CLI.temporaryPath("out.safetensors")])
        #expect(forward.status == 0, "\(forward.stderr)")
    }

    @Test func infoDescribesAModel() throws {
        let result = try CLI.run(["info", "--model", CLI.fixtures + "/models/bert-ForSequenceClassification", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["model_type"] as? String == "bert")
        #expect(object["head"] as? String == "ForSequenceClassification")
        #expect(object["labels"] as? [String] == ["LABEL_0", "LABEL_1", "LABEL_2"])
        #expect((object["parameters"] as? Int ?? 0) > 0)
        #expect(object["stored_dtypes"] as? [String] == ["F32"])
        if object["device"] as? String == "cpu" {
            #expect(["avx512", "avx2", "openblas"].contains(object["cpu_attention"] as? String ?? ""), "\(result.stdout)")
            #expect(["avx512", "avx2", "c"].contains(object["cpu_int8_rows"] as? String ?? ""), "\(result.stdout)")
        }
        let half = try CLI.run(["info", "--model", CLI.fixtures + "/models/megatron-ForPreTraining-f16"])
        #expect(half.stdout.contains("stored_dtypes: [\"F16\"]"), "\(half.stdout)")
        let text = try CLI.run(["info", "--model", CLI.fixtures + "/megatron/ngc.zip"])
        #expect(text.stdout.contains("architecture: MegatronBertForPreTraining"), "\(text.stdout)")
    }

    /// MEGATRON_BERT_THREADS: the same numbers on 1 thread and on 16 (more than this machine's cores; within 1e-4, the
    /// products' blocking may differ with the split), in every precision; a value that is not a count is an error
    /// before any work.
    @Test func theThreadCountChangesNoNumberAndABadOneIsRefused() throws {
        let model = CLI.fixtures + "/models/megatron-ForPreTraining"
        func forward(_ threads: String, _ dtype: String) throws -> (result: CLI.Result, tensors: [String: StoredTensor]) {
            let output = CLI.temporaryPath("threads-\(threads)-\(dtype).safetensors")
            defer { try? FileManager.default.removeItem(atPath: output) }
            let result = try CLI.run(["forward", "--model", model, "--input", CLI.fixtures + "/inputs/batch.json", "--output", output,
                                      "--device", "cpu", "--dtype", dtype, "--quiet"], environment: ["MEGATRON_BERT_THREADS": threads])
            return (result, result.status == 0 ? try SafeTensorsFile(path: output).tensors : [:])
        }
        for dtype in ["fp32", "bf16", "int8"] {
            let one = try forward("1", dtype), many = try forward("16", dtype)
            #expect(one.result.status == 0 && many.result.status == 0, "\(one.result.stderr) \(many.result.stderr)")
            try expectClose(many.tensors, one.tensors, bound: { _ in 1e-4 }, "\(dtype) 16 threads against 1")
        }
        for bad in ["0", "abc", "100000"] {
            let refused = try forward(bad, "fp32").result
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("MEGATRON_BERT_THREADS=\(bad) is not a thread count"), "\(refused.stderr)")
        }
    }

    @Test func forwardReadsStandardInputAndTakesADtype() throws {
        let output = CLI.temporaryPath("out.safetensors")
        let batch = try String(contentsOfFile: CLI.fixtures + "/inputs/batch.json", encoding: .utf8)
        let result = try CLI.run(["forward", "--model", CLI.fixtures + "/models/bert-ForQuestionAnswering",
                                  "--input", "-", "--output", output, "--dtype", "bf16"], stdin: batch)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try SafeTensorsFile(path: output).tensors["start_logits"]?.shape == [3, 7])
    }

    @Test(arguments: [
        (["forward", "--model", "/nonexistent", "--input", "/nonexistent.json", "--output", "/tmp/x"], "cannot read the batch file"),
        (["forward", "--model", "/nonexistent", "--input", "BATCH", "--output", "/tmp/x"], "does not exist"),
        (["forward", "--model", "MODEL", "--input", "BATCH", "--output", "/tmp/x", "--dtype", "fp8"], "fp8"),
        (["bench"], "exactly one of --model DIR or --random-weights"),
        (["bench", "--random-weights", "--batch", "1"], "--batch and --seq together"),
        (["bench", "--model", "MODEL", "--batch", "1", "--seq", "100"], "exceeds the model's max_position_embeddings 12"),
    ])
    func mistakesExitNonZeroWithAMessage(arguments: [String], message: String) throws {
        let filled = arguments.map {
            $0 == "MODEL" ? CLI.fixtures + "/models/megatron-Model" : $0 == "BATCH" ? CLI.fixtures + "/inputs/batch.json" : $0
        }
        let result = try CLI.run(filled)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test func aBatchTheModelCannotTakeIsReported() throws {
        let result = try CLI.run(["forward", "--model", CLI.fixtures + "/models/megatron-Model", "--input", "-",
                                  "--output", CLI.temporaryPath("x")], stdin: #"{"input_ids": [[1, 99]]}"#)
        #expect(result.status != 0)
        #expect(result.stderr.contains("input_ids[0] holds 99, outside 0..<53"), "\(result.stderr)")
    }

    @Test func benchPrintsOneJSONObjectPerPoint() throws {
        let result = try CLI.run(["bench", "--model", CLI.fixtures + "/models/megatron-ForPreTraining", "--batch", "2",
                                  "--seq", "8", "--json", "--min-seconds", "0", "--min-runs", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["batch"] as? Int == 2)
        #expect(object["seq"] as? Int == 8)
        #expect(object["dtype"] as? String == "fp32")
        #expect((object["tokens_per_second"] as? Double ?? 0) > 0)
        #expect((object["peak_rss_bytes"] as? Int ?? 0) > 0)
    }

    @Test func benchRunsAMixedLengthBatchPackedAndCountsRealTokens() throws {
        let lengths = CLI.temporaryPath("lengths.txt")
        try "# three sequences\n5, 2\n9 # the longest\n".write(toFile: lengths, atomically: true, encoding: .utf8)
        let result = try CLI.run(["bench", "--model", CLI.fixtures + "/models/megatron-ForPreTraining", "--lengths", lengths,
                                  "--device", "cpu", "--json", "--min-seconds", "0", "--min-runs", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 1, "only the mixed point without --points: \(result.stdout)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) as? [String: Any])
        #expect(object["mixed"] as? Bool == true)
        #expect(object["batch"] as? Int == 3)
        #expect(object["seq"] as? Int == 9)
        #expect(object["tokens"] as? Int == 16)
        #expect(object["packed"] as? Bool == true, "the CPU packs")
        let median = try #require(object["median_seconds"] as? Double)
        let perSecond = try #require(object["tokens_per_second"] as? Double)
        #expect(abs(perSecond * median - 16) < 1e-6, "tokens/s counts the 16 real tokens, not 3 x 9")
    }

    @Test(arguments: [
        ("5 x 7", "'x'"), ("0 4", "'0'"), ("# nothing\n", "has no lengths"), ("5 99", "exceeds the model's max_position_embeddings"),
    ])
    func badLengthFilesAreReported(text: String, message: String) throws {
        let lengths = CLI.temporaryPath("bad-lengths.txt")
        try text.write(toFile: lengths, atomically: true, encoding: .utf8)
        let result = try CLI.run(["bench", "--model", CLI.fixtures + "/models/megatron-ForPreTraining", "--lengths", lengths,
                                  "--device", "cpu", "--min-seconds", "0", "--min-runs", "1"])
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test func lengthFilesThatCannotBeReadAreReported() throws {
        let missing = try CLI.run(["bench", "--model", CLI.fixtures + "/models/megatron-ForPreTraining", "--lengths", "/nonexistent"])
        #expect(missing.status != 0 && missing.stderr.contains("cannot read the --lengths file /nonexistent"), "\(missing.stderr)")
        let endless = try CLI.run(["bench", "--model", CLI.fixtures + "/models/megatron-ForPreTraining", "--lengths", "/dev/zero"])
        #expect(endless.status != 0 && endless.stderr.contains("larger than"), "\(endless.stderr)")
    }

    @Test func helpListsTheSubcommands() throws {
        let result = try CLI.run(["--help"])
        #expect(result.status == 0)
        for command in ["fill-mask", "nsp", "embed", "similarity", "classify", "ner", "qa", "multiple-choice", "info", "forward", "bench"] {
            #expect(result.stdout.contains(command), "\(command)")
        }
    }

    @Test func tokenizeMatchesTheGoldenIDs() throws {
        let vocab = CLI.packageRoot + "/vocab/megatron-bert-cased-vocab.txt"
        let result = try CLI.run(["tokenize", "--vocab", vocab, "The capital of France is [MASK]."])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["input_ids"] as? [Int] == [101, 1109, 2364, 1104, 1699, 1110, 103, 119, 102])
        #expect((object["offsets"] as? [[Int]])?[6] == [25, 31])
    }

    @Test func tokenizeStreamsJSONLinesAndReportsTheBadLine() throws {
        let vocab = CLI.packageRoot + "/vocab/megatron-bert-cased-vocab.txt"
        let good = try CLI.run(["tokenize", "--vocab", vocab, "--input", "-", "--max-length", "5"],
                               stdin: "{\"text\": \"Hello there\", \"text_pair\": \"General Kenobi!\"}\n\n{\"text\": \"x\"}\n")
        #expect(good.status == 0, "\(good.stderr)")
        let lines = good.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["tokens"] as? [String] == ["[CLS]", "Hello", "[SEP]", "General", "[SEP]"])
        #expect(first["token_type_ids"] as? [Int] == [0, 0, 0, 1, 1])
        let bad = try CLI.run(["tokenize", "--vocab", vocab, "--input", "-"], stdin: "{\"text\": \"ok\"}\nnot json\n")
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("standard input:2: invalid JSON"), "\(bad.stderr)")
        let tight = try CLI.run(["tokenize", "--vocab", vocab, "--max-length", "1", "hello"])
        #expect(tight.status != 0)
        #expect(tight.stderr.contains("max_length 1 cannot hold the 2 special tokens"), "\(tight.stderr)")
    }
}
