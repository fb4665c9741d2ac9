import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The worker protocol of every task's JSON Lines mode (Sources/megatron-bert/TaskRunner.swift): ids copied onto
/// output lines, `--on-error record`, a failure pinned to its line, and a long-lived process that answers each
/// batch its caller writes without waiting for the end of its input.
@Suite struct TaskRunnerTests {
    static let models = TaskCommandTests.models

    static func objects(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    @Test func anIDJoinsAnObjectResultAndWrapsAListResult() throws {
        let embed = try CLI.run(["embed", "--model", Self.models + "/embedding", "--input", "-", "--json"],
                                stdin: #"{"id": 7, "text": "Paris"}"# + "\n" + #"{"text": "John"}"# + "\n" + #"{"id": {"k": ["a", 2.5]}, "text": "York"}"# + "\n")
        #expect(embed.status == 0, "\(embed.stderr)")
        let vectors = try Self.objects(embed.stdout)
        #expect(vectors.count == 3)
        #expect(vectors[0]["id"] as? Int == 7)
        #expect(vectors[0]["embedding"] is [Double])
        #expect(vectors[1]["id"] == nil && vectors[1].count == 1, "no id, no change")
        #expect((vectors[2]["id"] as? [String: Any])?["k"] as? [AnyHashable] == ["a", 2.5], "any JSON value")
        #expect(embed.stdout.split(separator: "\n")[0].hasPrefix(#"{"id":7,"embedding":["#), "\(embed.stdout.prefix(40))")

        let fill = try CLI.run(["fill-mask", "--model", Self.models + "/pretraining", "--input", "-", "--json", "--top-k", "2"],
                               stdin: #"{"id": "a", "text": "The capital of France is [MASK]."}"# + "\n")
        let line = try #require(try Self.objects(fill.stdout).first)
        #expect(Set(line.keys) == ["id", "result"])
        #expect((line["result"] as? [[String: Any]])?.count == 2)

        let qa = try CLI.run(["qa", "--model", Self.models + "/qa", "--input", "-", "--json"],
                             stdin: #"{"id": null, "question": "Where does John live?", "context": "John lives in Paris."}"# + "\n")
        let answer = try #require(try Self.objects(qa.stdout).first)
        #expect(answer["id"] is NSNull, "a null id is an id")
        #expect((answer["result"] as? [[String: Any]])?.first?["answer"] is String)
    }

    @Test func recordTurnsEveryBadLineIntoAnErrorLineAndGoesOn() throws {
        let path = CLI.temporaryPath("mixed.jsonl")
        var bytes = Array((#"{"id": 1, "text": "The capital of France is [MASK]."}"# + "\n").utf8)
        bytes += Array("not json\n".utf8)
        bytes += Array((#"{"id": 3, "text": "no mask here"}"# + "\n").utf8)
        bytes += Array((#"{"id": 4, "txt": "[MASK]"}"# + "\n").utf8)
        bytes += Array(#"{"id": 5, "text": "Par"#.utf8) + [0xFF] + Array(#"is [MASK]"}"#.utf8) + [0x0A]
        bytes += Array("[1, 2]\n".utf8)
        bytes += Array(repeating: UInt8(ascii: "x"), count: (64 << 20) + 10) + [0x0A]  // over the 64 MiB line limit
        bytes += Array((#"{"id": 8, "text": "[MASK] lives in Paris."}"# + "\n").utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try CLI.run(["fill-mask", "--model", Self.models + "/pretraining", "--input", path, "--json",
                                  "--on-error", "record", "--top-k", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try Self.objects(result.stdout)
        try #require(lines.count == 8, "one output line per input line: \(result.stdout.prefix(2000))")
        #expect(lines[0]["id"] as? Int == 1 && lines[0]["result"] != nil)
        let errors = lines[1...6].map { $0["error"] as? String ?? "" }
        #expect(errors[0].contains("\(path):2: invalid JSON") && lines[1]["id"] == nil, "\(errors[0])")
        #expect(errors[1] == "\(path):3: no [MASK] in \"no mask here\": write [MASK] where the word to predict goes")
        #expect(lines[2]["id"] as? Int == 3)
        #expect(errors[2] == "\(path):4: needs a string \"text\"" && lines[3]["id"] as? Int == 4, "\(errors[2])")
        #expect(errors[3].contains("\(path):5: invalid JSON: invalid UTF-8"), "\(errors[3])")
        #expect(errors[4] == "\(path):6: not a JSON object (each line must be one, e.g. {\"text\": \"...\"})")
        #expect(errors[5] == "\(path):7: a line longer than 64 MiB; split the input")
        #expect(lines[7]["id"] as? Int == 8 && lines[7]["result"] != nil, "reading goes on after an over-long line")
    }

    @Test func stopWritesTheResultsBeforeTheBadLineAndNamesIt() throws {
        let result = try CLI.run(["fill-mask", "--model", Self.models + "/pretraining", "--input", "-", "--json", "--top-k", "1"],
                                 stdin: "{\"text\": \"[MASK] lives in Paris.\"}\n{\"text\": \"Paris [MASK].\"}\n{\"text\": \"no mask\"}\n{\"text\": \"[MASK].\"}\n")
        #expect(result.status == 1)
        #expect(result.stderr.contains("standard input:3: no [MASK] in \"no mask\""), "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").count == 2, "the two results before the bad line: \(result.stdout)")
    }

    /// Chunks are formatted on every core and written while the next chunk runs: over several chunks (embed's are
    /// 2,048 lines) every line comes out once, in input order, with the bytes JSONEncoder would write; a bad line in
    /// a later chunk still stops the run after every result before it.
    @Test(arguments: ["0", "1"]) func severalChunksComeOutInOrderAndStopAtABadLine(prepareAhead: String) throws {
        let path = CLI.temporaryPath("chunks.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let count = 5_000
        let lines = (0..<count).map { #"{"id": \#($0), "text": "Paris \#(String(repeating: "John ", count: $0 % 7))"}"# }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        // With MEGATRON_BERT_PREPARE_AHEAD=1 (the GPU's default) each next chunk is read and tokenized while this one runs.
        let environment = ["MEGATRON_BERT_PREPARE_AHEAD": prepareAhead]
        let result = try CLI.run(["embed", "--model", Self.models + "/embedding", "--input", path, "--json", "--quiet"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let objects = try Self.objects(result.stdout)
        #expect(objects.map { $0["id"] as? Int } == Array(0..<count))
        // The same vector for the same text wherever it falls in the chunks, and JSONEncoder's bytes.
        let first = try #require(objects[0]["embedding"] as? [Double]), again = try #require(objects[4_998]["embedding"] as? [Double])
        #expect(first == again)
        let encoded = String(decoding: try JSONEncoder().encode(first.map(Float.init)), as: UTF8.self)
        #expect(result.stdout.split(separator: "\n")[0] == #"{"id":0,"embedding":"# + encoded + "}")

        var broken = lines
        broken[4_500] = #"{"id": 4500}"#
        try (broken.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let stopped = try CLI.run(["embed", "--model", Self.models + "/embedding", "--input", path, "--json", "--quiet"], environment: environment)
        #expect(stopped.status == 1)
        #expect(stopped.stderr.contains("\(path):4501: needs a string \"text\""), "\(stopped.stderr)")
        #expect(try Self.objects(stopped.stdout).map { $0["id"] as? Int } == Array(0..<4_500))
        if prepareAhead == "1" {
            let refused = try CLI.run(["embed", "--model", Self.models + "/embedding", "--input", path, "--json", "--quiet"],
                                      environment: ["MEGATRON_BERT_PREPARE_AHEAD": "yes"])
            #expect(refused.status == 1 && refused.stderr.contains("MEGATRON_BERT_PREPARE_AHEAD=yes is not a choice"), "\(refused.stderr)")
        }
    }

    @Test func textLinesRecordInvalidUTF8() throws {
        let result = try Shell.run(#"printf 'Paris [MASK].\n\xc3\x28\n[MASK] York.\n' | "$MB" fill-mask --model "$FIXTURES/tasks/pretraining" --json --on-error record --top-k 1"#)
        #expect(result.status == 0, "\(result)")
        let lines = try TaskCommandTests.lines(result.stdout)
        try #require(lines.count == 3, "\(result.stdout)")
        #expect((lines[1] as? [String: Any])?["error"] as? String == "standard input:2: not valid UTF-8")
        #expect(lines[0] is [Any] && lines[2] is [Any], "predictions, unchanged without ids")
    }

    /// A worker stays up: each batch written to its standard input is answered (and flushed) while the pipe stays
    /// open; a worker that waited for a full chunk or the end of its input would miss the deadline.
    @Test func aLongLivedWorkerAnswersEachBatchWithoutTheEndOfItsInput() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.executable)
        process.arguments = ["embed", "--model", Self.models + "/embedding", "--input", "-", "--json", "--quiet"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var pending: [UInt8] = []
        func readLines(_ count: Int) throws -> [[String: Any]] {
            let deadline = Date().addingTimeInterval(60)
            while pending.filter({ $0 == 0x0A }).count < count {
                var descriptor = pollfd(fd: output.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0)
                let left = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
                try #require(poll(&descriptor, 1, left) > 0, "no answer within 60 s: the worker waits for more input")
                let data = output.fileHandleForReading.availableData
                try #require(!data.isEmpty, "the worker exited early")
                pending += data
            }
            let end = pending.indices.filter { pending[$0] == 0x0A }[count - 1]
            let text = String(decoding: pending[...end], as: UTF8.self)
            pending.removeFirst(end + 1)
            return try Self.objects(text)
        }
        for batch in 0..<3 {
            let lines = (0..<5).map { #"{"id": "\#(batch)-\#($0)", "text": "Paris \#(String(repeating: "John ", count: $0))"}"# + "\n" }
            input.fileHandleForWriting.write(Data(lines.joined().utf8))
            let answers = try readLines(5)
            #expect(answers.map { $0["id"] as? String } == (0..<5).map { "\(batch)-\($0)" })
        }
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
