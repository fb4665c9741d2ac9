import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// `megatron-bert serve` end to end on 127.0.0.1: TEI's routes and shapes, answers equal to the command line's,
/// TEI's errors, concurrent requests batched and routed back, graceful exit on SIGTERM.
@Suite(.serialized) struct ServeCommandTests {
    /// A running server: its process and base URL; stopped with SIGTERM.
    final class Running {
        let process = Process()
        let base: String
        private let errors = Pipe()

        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: CLI.executable)
            process.arguments = ["serve", "--hostname", "127.0.0.1", "--port", "0"] + arguments
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            // The address is on standard error: "listening on http://127.0.0.1:PORT".
            var text = ""
            let deadline = Date().addingTimeInterval(60)
            while !text.contains("listening on http://"), Date() < deadline, process.isRunning {
                let data = errors.fileHandleForReading.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            guard let line = text.split(separator: "\n").first(where: { $0.contains("listening on http://") }) else {
                process.terminate()
                throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "the server did not start: \(text)"])
            }
            base = String(line[line.range(of: "http://")!.lowerBound...])
        }

        /// SIGINT, then the exit status.
        func stop() -> Int32 {
            process.interrupt()  // SIGTERM is tested on its own
            process.waitUntilExit()
            return process.terminationStatus
        }

        deinit { if process.isRunning { process.terminate() } }

        func request(_ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> (status: Int, json: Any?, headers: [AnyHashable: Any]) {
            var request = URLRequest(url: URL(string: base + path)!)
            request.timeoutInterval = 60
            if let body {
                request.httpMethod = "POST"
                request.httpBody = Data(body.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = response as! HTTPURLResponse
            return (http.statusCode, data.isEmpty ? nil : try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]), http.allHeaderFields)
        }
    }

    static let models = TaskCommandTests.models

    static func cliVectors(_ texts: [String], model: String) throws -> [[Double]] {
        let result = try CLI.run(["embed", "--model", model, "--normalize", "--json", "--quiet"] + texts)
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]).map { $0["embedding"] as! [Double] }
    }

    static func close(_ a: [Double], _ b: [Double]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 }
    }

    @Test func teiRoutesAnswerAsTheCommandLineDoes() async throws {
        let server = try Running(["--model", Self.models + "/embedding", "--quiet"])
        let health = try await server.request("/health")
        #expect(health.status == 200)
        let document = try #require(try await server.request("/openapi.json").json as? [String: Any])
        let paths = Set((document["paths"] as? [String: Any] ?? [:]).keys)
        #expect(paths.isSuperset(of: ["/embed", "/embed_all", "/v1/embeddings", "/similarity", "/tokenize", "/decode", "/predict", "/rerank",
                                      "/fill-mask", "/ner", "/qa", "/nsp", "/multiple-choice", "/", "/health", "/info", "/metrics"]), "\(paths)")
        let info = try #require(try await server.request("/info").json as? [String: Any])
        #expect(info["max_input_length"] as? Int == 24 && info["max_client_batch_size"] as? Int == 32)
        #expect((info["model_type"] as? [String: Any])?["embedding"] != nil)

        let texts = ["John lives in Paris.", "Paris is in France and John works at Google."]
        let expected = try Self.cliVectors(texts, model: Self.models + "/embedding")
        let one = try await server.request("/embed", body: #"{"inputs": "John lives in Paris."}"#)
        #expect(one.status == 200)
        let vectors = try #require(one.json as? [[Double]])
        #expect(vectors.count == 1 && Self.close(vectors[0], expected[0]), "normalize defaults to true")
        #expect(one.headers["x-compute-tokens"] as? String != nil && one.headers["x-inference-time"] != nil)
        let batch = try #require(try await server.request("/embed", body: #"{"inputs": ["John lives in Paris.", "Paris is in France and John works at Google."]}"#).json as? [[Double]])
        #expect(batch.count == 2 && Self.close(batch[1], expected[1]))
        let cut = try #require(try await server.request("/embed", body: #"{"inputs": "John lives in Paris.", "dimensions": 4, "normalize": false}"#).json as? [[Double]])
        #expect(cut[0].count == 4)

        let openAI = try #require(try await server.request("/v1/embeddings", body: #"{"input": ["John lives in Paris."], "model": "x"}"#).json as? [String: Any])
        #expect(openAI["object"] as? String == "list")
        let item = try #require((openAI["data"] as? [[String: Any]])?.first)
        #expect(item["index"] as? Int == 0 && Self.close(item["embedding"] as? [Double] ?? [], expected[0]))
        let base64 = try #require(try await server.request("/v1/embeddings", body: #"{"input": "John lives in Paris.", "encoding_format": "base64"}"#).json as? [String: Any])
        let encoded = try #require((base64["data"] as? [[String: Any]])?.first?["embedding"] as? String)
        let floats = try #require(Data(base64Encoded: encoded)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(Self.close(floats.map(Double.init), expected[0]), "little-endian float32")

        let tokens = try #require(try await server.request("/tokenize", body: #"{"inputs": "John lives"}"#).json as? [[[String: Any]]])
        #expect(tokens[0].first?["special"] as? Bool == true && tokens[0].first?["start"] is NSNull)
        #expect(tokens[0][1]["text"] as? String == "John" && tokens[0][1]["start"] as? Int == 0 && tokens[0][1]["stop"] as? Int == 4)
        let ids = tokens[0].map { $0["id"] as! Int }
        let decoded = try #require(try await server.request("/decode", body: #"{"ids": \#(ids)}"#).json as? [String])
        #expect(decoded == ["John lives"])
        // Token ids instead of text: the same vector.
        let fromText = try #require(try await server.request("/embed", body: #"{"inputs": "John lives"}"#).json as? [[Double]])
        let fromIDs = try #require(try await server.request("/embed", body: #"{"inputs": [\#(ids)]}"#).json as? [[Double]])
        #expect(Self.close(fromIDs[0], fromText[0]))
        let badID = try await server.request("/embed", body: #"{"inputs": [101, 99999]}"#)
        #expect(badID.status == 422 && (badID.json as? [String: Any])?["error_type"] as? String == "Tokenizer")
        #expect(server.stop() == 0)
    }

    /// `truncation_direction`: Right keeps a long text's first 22 tokens, Left its last 22 (with [CLS] and [SEP]
    /// around them, 24 in all): the same vectors as those token ids sent as they are.
    @Test func truncationDirectionKeepsEitherEnd() async throws {
        let server = try Running(["--model", Self.models + "/embedding", "--quiet"])
        let words = ["Paris", "John", "Google", "France", "York", "river", "lives", "in"]
        let text = (0..<40).map { words[($0 * 5) % words.count] + ($0 % 7 == 0 ? "." : "") }.joined(separator: " ")
        let tokens = try #require(try await server.request("/tokenize", body: #"{"inputs": "\#(text)"}"#).json as? [[[String: Any]]])[0]
        let ids = tokens.map { $0["id"] as! Int }
        #expect(ids.count > 30)
        let (cls, sep, pieces) = (ids.first!, ids.last!, Array(ids.dropFirst().dropLast()))
        for (direction, kept) in [("Right", pieces.prefix(22)), ("Left", pieces.suffix(22))] {
            let cut = try await server.request("/embed", body: #"{"inputs": "\#(text)", "truncate": true, "truncation_direction": "\#(direction)"}"#)
            let byIDs = try await server.request("/embed", body: #"{"inputs": [\#([cls] + kept + [sep])]}"#)
            let a = try #require((cut.json as? [[Double]])?.first, "\(direction): \(String(describing: cut.json))")
            let b = try #require((byIDs.json as? [[Double]])?.first)
            #expect(Self.close(a, b), "\(direction)")
            #expect(cut.headers["x-compute-tokens"] as? String == "24")
        }
        // Token ids cut on the left keep the last 24.
        let idsLeft = try await server.request("/embed", body: #"{"inputs": [\#(ids)], "truncate": true, "truncation_direction": "Left"}"#)
        let last = try await server.request("/embed", body: #"{"inputs": [\#(Array(ids.suffix(24)))]}"#)
        #expect(Self.close((idsLeft.json as? [[Double]])?.first ?? [], (last.json as? [[Double]])?.first ?? [1]))
        let bad = try await server.request("/embed", body: #"{"inputs": "x", "truncation_direction": "Middle"}"#)
        #expect(bad.status == 422 && ((bad.json as? [String: Any])?["error"] as? String ?? "").contains("\"Right\" or \"Left\""))
        #expect(server.stop() == 0)
    }

    @Test func errorsAreTEIsJSON() async throws {
        let server = try Running(["--model", Self.models + "/embedding", "--quiet", "--max-client-batch-size", "2",
                                  "--payload-limit", "200", "--api-key", "secret"])
        let key = ["Authorization": "Bearer secret"]
        func expectError(_ body: String?, _ path: String = "/embed", headers: [String: String]? = nil, status: Int, type: String,
                         _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let answer = try await server.request(path, body: body, headers: headers ?? key)
            #expect(answer.status == status, "\(body ?? "")", sourceLocation: sourceLocation)
            let json = answer.json as? [String: Any]
            #expect(json?["error_type"] as? String == type, sourceLocation: sourceLocation)
            #expect((json?["error"] as? String ?? "").contains(message), "\(json ?? [:])", sourceLocation: sourceLocation)
        }
        try await expectError(#"{"inputs": "x"}"#, headers: [:], status: 401, type: "Unauthorized", "Authorization: Bearer")
        try await expectError("{not json", status: 400, type: "Validation", "not valid JSON")
        try await expectError(#"{"inputs": 7}"#, status: 400, type: "Validation", "`inputs` must be a string or a list of strings")
        try await expectError(#"{"inputs": []}"#, status: 400, type: "Empty", "cannot be empty")
        try await expectError(#"{"text": "x"}"#, status: 400, type: "Validation", "missing field `inputs`")
        try await expectError(#"{"inputs": ["a", "b", "c"]}"#, status: 422, type: "Validation", "batch size 3 > maximum allowed batch size 2")
        try await expectError(#"{"inputs": "\#(String(repeating: "John ", count: 30))"}"#, status: 422, type: "Validation", "must have less than 24 tokens")
        try await expectError(#"{"inputs": "x", "dimensions": 0}"#, status: 422, type: "Validation", "`dimensions` must be between 1")
        try await expectError(#"{"inputs": "\#(String(repeating: "a", count: 300))"}"#, status: 413, type: "Validation", "payload limit of 200 bytes")
        try await expectError(#"{"inputs": "Paris [MASK]."}"#, "/fill-mask", status: 424, type: "Unsupported", "fill-mask needs a model with")
        let truncated = try await server.request("/embed", body: #"{"inputs": "\#(String(repeating: "John ", count: 30))", "truncate": true}"#, headers: key)
        #expect(truncated.status == 200)
        #expect(server.stop() == 0)
    }

    @Test func fillMaskTakesHFInferenceBodiesAndPOSTSlashServesTheHead() async throws {
        let server = try Running(["--model", Self.models + "/pretraining", "--quiet"])
        let cli = try CLI.run(["fill-mask", "--model", Self.models + "/pretraining", "--json", "--top-k", "2", "The capital of France is [MASK]."])
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as? [[[String: Any]]])[0]
        for path in ["/fill-mask", "/"] {
            let answer = try await server.request(path, body: #"{"inputs": "The capital of France is [MASK].", "parameters": {"top_k": 2}}"#)
            let predictions = try #require(answer.json as? [[String: Any]], "\(path): \(String(describing: answer.json))")
            #expect(predictions.map { $0["token_str"] as? String } == expected.map { $0["token_str"] as? String })
            #expect(zip(predictions, expected).allSatisfy { abs(($0["score"] as! Double) - ($1["score"] as! Double)) < 1e-6 })
        }
        let batch = try #require(try await server.request("/fill-mask", body: #"{"inputs": ["[MASK] lives in Paris.", "no mask"]}"#).json as? [String: Any])
        #expect((batch["error"] as? String ?? "").contains("no [MASK]"), "\(batch)")
        #expect(server.stop() == 0)
    }

    /// Each head's route answers what the command line prints for the same input (HF pipeline fields), and
    /// `POST /` serves the head's own task.
    @Test func taskRoutesAnswerAsTheCommandLineDoes() async throws {
        func cli(_ arguments: [String]) throws -> Any {
            let result = try CLI.run(arguments + ["--json", "--quiet"])
            return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [Any])[0]
        }
        func same(_ a: Any?, _ b: Any) -> Bool {
            // Same JSON up to 1e-6 on numbers.
            switch (a, b) {
            case let (x as [String: Any], y as [String: Any]): return Set(x.keys) == Set(y.keys) && x.keys.allSatisfy { same(x[$0], y[$0]!) }
            case let (x as [Any], y as [Any]): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
            case let (x as NSNumber, y as NSNumber): return abs(x.doubleValue - y.doubleValue) <= 1e-6
            case let (x as String, y as String): return x == y
            default: return false
            }
        }
        let cases: [(model: String, path: String, body: String, cli: [String])] = [
            ("ner", "/ner", #"{"inputs": "John Smith lives in New York.", "parameters": {"aggregation_strategy": "first"}}"#,
             ["ner", "--aggregation", "first", "John Smith lives in New York."]),
            ("qa", "/qa", #"{"inputs": {"question": "Where does John live?", "context": "John lives in Paris."}, "parameters": {"top_k": 2}}"#,
             ["qa", "--question", "Where does John live?", "--context", "John lives in Paris.", "--top-k", "2"]),
            ("pretraining", "/nsp", #"{"inputs": {"text": "John lives in Paris.", "text_pair": "Paris is in France."}}"#,
             ["nsp", "John lives in Paris.", "Paris is in France."]),
            ("multiple-choice", "/multiple-choice", #"{"inputs": {"prompt": "John lives in", "choices": ["Paris.", "York."]}}"#,
             ["multiple-choice", "--prompt", "John lives in", "Paris.", "York."]),
            ("classification", "/predict", #"{"inputs": ["John lives in Paris.", "It is nice."]}"#,
             ["classify", "--top-k", "3", "--pair", "It is nice.", "John lives in Paris."]),
        ]
        for item in cases {
            let server = try Running(["--model", Self.models + "/" + item.model, "--quiet"])
            let expected = try cli(item.cli + ["--model", Self.models + "/" + item.model])
            // POST / serves the head's task: fill-mask, not nsp, for a pre-training model.
            for path in [item.path] + (item.model == "pretraining" ? [] : ["/"]) {
                let answer = try await server.request(path, body: item.body)
                #expect(answer.status == 200 && same(answer.json, expected), "\(item.model) \(path): \(String(describing: answer.json)) vs \(expected)")
            }
            #expect(server.stop() == 0)
        }
    }

    /// 24 concurrent requests: batches form (the queue waits show it) and every answer is its own request's.
    @Test func concurrentRequestsShareBatchesAndGetTheirOwnAnswers() async throws {
        let server = try Running(["--model", Self.models + "/embedding", "--quiet"])
        let words = ["Paris", "John", "Google", "France", "York", "river"]
        let texts = (0..<24).map { i in (0...(i % 5)).map { words[($0 + i) % words.count] }.joined(separator: " ") }
        let expected = try Self.cliVectors(texts, model: Self.models + "/embedding")
        let answers = try await withThrowingTaskGroup(of: (Int, [Double]).self) { group in
            for (i, text) in texts.enumerated() {
                group.addTask {
                    let answer = try await server.request("/embed", body: #"{"inputs": "\#(text)"}"#)
                    return (i, (answer.json as? [[Double]])?.first ?? [])
                }
            }
            return try await group.reduce(into: [Int: [Double]]()) { $0[$1.0] = $1.1 }
        }
        for i in texts.indices { #expect(Self.close(answers[i] ?? [], expected[i]), "request \(i)") }
        #expect(server.stop() == 0)
    }

    @Test func sigtermStopsTheServerWithStatusZero() throws {
        let server = try Running(["--model", Self.models + "/embedding", "--quiet"])
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0)
    }
}
