import ArgumentParser
import Foundation
import MegatronBERT
import MegatronServer

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "An HTTP server with text-embeddings-inference's API and every task, batching concurrent requests.",
        discussion: """
        Routes: GET /health, GET /info, GET /metrics (Prometheus, TEI's te_* names), GET /openapi.json; TEI's request and response shapes on POST /embed, /embed_all, \
        /v1/embeddings (OpenAI), /similarity, /tokenize, /decode, /predict and /rerank (classification heads); \
        Hugging Face Inference API bodies ({"inputs": …, "parameters": {…}}) and pipeline fields on POST /fill-mask \
        (top_k, targets), /ner (aggregation_strategy), /qa (inputs {question, context}; top_k, max_answer_len, \
        doc_stride, max_seq_len, handle_impossible_answer), /nsp (inputs {text, text_pair}), /multiple-choice \
        (inputs {prompt, choices}); "inputs" may be a list. POST / serves --task (default: what the model's head is \
        for: fill-mask, nsp, predict, ner, qa, multiple-choice, or embed for an encoder). Errors \
        are {"error": …, "error_type": …} with TEI's status codes (400 malformed body, 413 over --payload-limit, \
        422 invalid input, 424 a task the model's head cannot do, 429 over --max-concurrent-requests, 401 without \
        the --api-key). Every model route answers with TEI's timing headers (x-compute-time, x-queue-time, …).
        Inputs of concurrent requests share batches of up to --max-batch-tokens tokens. SIGTERM or SIGINT stops \
        accepting connections, finishes the requests in flight (for at most --graceful-shutdown-timeout seconds; \
        then those still queued are answered 503) and exits 0. A request whose client closed the connection before it \
        ran is dropped from the queue.
        Environment variables as TEI names them set the defaults: HOSTNAME, PORT, MAX_CONCURRENT_REQUESTS, \
        MAX_BATCH_TOKENS, MAX_BATCH_REQUESTS, MAX_CLIENT_BATCH_SIZE, AUTO_TRUNCATE, PAYLOAD_LIMIT, API_KEY, POOLING \
        (and GRACEFUL_SHUTDOWN_TIMEOUT, ours).

        Examples:
          megatron-bert serve --model ./all-MiniLM-L6-v2 --port 3000
          curl 127.0.0.1:3000/embed -H 'Content-Type: application/json' -d '{"inputs": "What is Deep Learning?"}'
          curl 127.0.0.1:3000/fill-mask -d '{"inputs": "Paris is the [MASK] of France.", "parameters": {"top_k": 3}}'
          curl 127.0.0.1:3000/v1/embeddings -d '{"input": ["A sentence.", "Another."], "model": "m"}'
        """
    )

    @OptionGroup var options: ModelOptions

    static let environment = ProcessInfo.processInfo.environment

    @Option(help: "The address to listen on (0.0.0.0: every interface; 127.0.0.1: this machine only).")
    var hostname: String = environment["HOSTNAME"] ?? "0.0.0.0"

    @Option(parsing: .unconditional, help: "The port (0: any free one; the address is printed).")
    var port: Int = Int(environment["PORT"] ?? "") ?? 3000

    @Option(parsing: .unconditional, help: "Requests in flight at once; more are answered 429 at once.")
    var maxConcurrentRequests: Int = Int(environment["MAX_CONCURRENT_REQUESTS"] ?? "") ?? 512

    @Option(parsing: .unconditional, help: "Tokens per batch taken from the queue of concurrent requests.")
    var maxBatchTokens: Int = Int(environment["MAX_BATCH_TOKENS"] ?? "") ?? 16384

    @Option(parsing: .unconditional, help: "Requests per batch (default: as many as fit --max-batch-tokens).")
    var maxBatchRequests: Int?

    @Option(parsing: .unconditional, help: "Inputs per request; more is a 422 unless --auto-split.")
    var maxClientBatchSize: Int = Int(environment["MAX_CLIENT_BATCH_SIZE"] ?? "") ?? 32

    @Flag(help: "Serve a request with more inputs than --max-client-batch-size by splitting it across batches.")
    var autoSplit = false

    @Flag(help: "Cut inputs over the model's limit instead of answering 422.")
    var autoTruncate = ["1", "true"].contains(environment["AUTO_TRUNCATE"]?.lowercased() ?? "")

    @Option(parsing: .unconditional, help: "The largest request body in bytes (413 beyond it).")
    var payloadLimit: Int = Int(environment["PAYLOAD_LIMIT"] ?? "") ?? 2_000_000

    @Option(help: "Require `Authorization: Bearer KEY` on every model route.")
    var apiKey: String?

    @Option(help: "Pooling of /embed: cls, mean, max or pooler (default: the model's 1_Pooling/config.json, else mean).")
    var pooling: Pooling?

    @Option(help: "What POST / serves: embed, fill-mask, ner, qa, nsp, multiple-choice or predict (default: what the model's head is for).")
    var task: String?

    @Option(help: "The model's name in /info and /v1/embeddings answers (default: the model directory's name).")
    var modelID: String?

    @Option(parsing: .unconditional,
            help: "Seconds the requests in flight may take to finish after SIGTERM or SIGINT; then those still queued are answered 503 and the server exits.")
    var gracefulShutdownTimeout: Double = Double(environment["GRACEFUL_SHUTDOWN_TIMEOUT"] ?? "") ?? 30

    @Option(parsing: .unconditional, help: "Seconds from a request's first byte (or a new connection) to its whole head; a connection over it is closed.")
    var headerTimeout: Double = Double(environment["HEADER_TIMEOUT"] ?? "") ?? 30

    @Option(parsing: .unconditional, help: "Seconds a request's body may stop coming; a connection over it is closed.")
    var bodyTimeout: Double = Double(environment["BODY_TIMEOUT"] ?? "") ?? 30

    @Option(parsing: .unconditional, help: "Seconds a connection may stay idle between requests.")
    var keepAliveTimeout: Double = Double(environment["KEEP_ALIVE_TIMEOUT"] ?? "") ?? 60

    @Option(parsing: .unconditional, help: "Open connections at once; a new one past it is closed at once (default: the descriptor limit less 64, at most 10000).")
    var maxConnections: Int?

    @Option(parsing: .unconditional, help: "Serve TEI's gRPC API (proto/tei.proto: Info, Embed, Predict, Rerank, Tokenize and their streams) on this port too (0: any free one, printed).")
    var grpcPort: Int?

    /// --max-connections, else $MAX_CONNECTIONS.
    var connectionCap: Int? { maxConnections ?? Self.environment["MAX_CONNECTIONS"].flatMap { Int($0) } }
    /// --grpc-port, else $GRPC_PORT.
    var grpcListenPort: Int? { grpcPort ?? Self.environment["GRPC_PORT"].flatMap { Int($0) } }

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535 (it is \(port))") }
        for (name, value) in [("--max-concurrent-requests", maxConcurrentRequests), ("--max-batch-tokens", maxBatchTokens),
                              ("--max-client-batch-size", maxClientBatchSize), ("--payload-limit", payloadLimit)] where value < 1 {
            throw ValidationError("\(name) must be at least 1 (it is \(value))")
        }
        if let maxBatchRequests, maxBatchRequests < 1 { throw ValidationError("--max-batch-requests must be at least 1") }
        guard gracefulShutdownTimeout >= 0, gracefulShutdownTimeout.isFinite else {
            throw ValidationError("--graceful-shutdown-timeout must be a number of seconds, 0 or more (it is \(gracefulShutdownTimeout))")
        }
        for (name, value) in [("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout), ("--keep-alive-timeout", keepAliveTimeout)]
        where !(value > 0 && value.isFinite) {
            throw ValidationError("\(name) must be a positive number of seconds (it is \(value))")
        }
        if let cap = connectionCap, cap < 1 { throw ValidationError("--max-connections must be at least 1 (it is \(cap))") }
        if let port = grpcListenPort, !(0...65535).contains(port) { throw ValidationError("--grpc-port must be between 0 and 65535 (it is \(port))") }
        if options.input != nil { throw ValidationError("serve takes its inputs from HTTP requests, not --input") }
    }

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            var settings = ServerOptions()
            settings.hostname = hostname
            settings.port = port
            settings.maxConcurrentRequests = maxConcurrentRequests
            settings.maxBatchTokens = maxBatchTokens
            settings.maxBatchRequests = maxBatchRequests ?? Self.environment["MAX_BATCH_REQUESTS"].flatMap { Int($0) }
            settings.maxClientBatchSize = maxClientBatchSize
            settings.autoSplit = autoSplit
            settings.autoTruncate = autoTruncate
            settings.payloadLimit = payloadLimit
            settings.apiKey = apiKey ?? Self.environment["API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
            settings.pooling = pooling ?? Self.environment["POOLING"].flatMap { Pooling(rawValue: $0) }
            settings.gracefulShutdownTimeout = .milliseconds(Int64((gracefulShutdownTimeout * 1000).rounded()))
            settings.headerTimeout = .milliseconds(Int64((headerTimeout * 1000).rounded()))
            settings.bodyTimeout = .milliseconds(Int64((bodyTimeout * 1000).rounded()))
            settings.keepAliveTimeout = .milliseconds(Int64((keepAliveTimeout * 1000).rounded()))
            settings.maxConnections = connectionCap
            settings.grpcPort = grpcListenPort
            settings.modelID = modelID ?? URL(fileURLWithPath: pipeline.source).lastPathComponent
            settings.dtype = ["fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "int8"][options.dtype.rawValue] ?? options.dtype.rawValue
            let server = try Server(pipeline: pipeline, options: settings, defaultTask: task)
            let finished = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var failure: Error?
            Task {
                do {
                    try await server.warmUp()
                    note("routes: " + server.liveRoutes.joined(separator: ", "))
                    try await server.run(onListening: { address in note("listening on http://\(address)") },
                                         onGRPCListening: { address in note("gRPC (TEI's tei.v1 services) listening on \(address)") })
                } catch {
                    failure = error
                }
                finished.signal()
            }
            finished.wait()
            if let failure { throw failure }
            note("stopped")
        }
    }
}
