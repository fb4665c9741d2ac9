import Foundation
import GRPCCore
import TensorFiles

/// TEI's gRPC API (`proto/tei.proto`, package `tei.v1`) on the server's own routes: every RPC builds the body its HTTP
/// route takes and runs that route's handler — the same batch queue, the same numbers, the same checks — then answers
/// in TEI's messages. Errors are TEI's status codes (validation: INVALID_ARGUMENT, overloaded: RESOURCE_EXHAUSTED, a
/// head that cannot serve the RPC: FAILED_PRECONDITION, shutting down: UNAVAILABLE). A streaming RPC runs its
/// messages concurrently (so that they batch together) and answers them in order; a cancelled call leaves the queue.
///
/// ```swift
/// let grpc = GRPCServer(transport: .http2NIOPosix(address: .ipv4(host: "0.0.0.0", port: 50051), transportSecurity: .plaintext),
///                       services: TEIServices(server: server).all, interceptors: TEIServices.interceptors(apiKey: key))
/// ```
struct TEIServices: Sendable {
    let server: Server

    var all: [any RegistrableRPCService] {
        [InfoService(calls: self), EmbedService(calls: self), PredictService(calls: self), RerankService(calls: self),
         TokenizeService(calls: self)]
    }

    /// `--api-key`: every call needs the metadata `authorization: Bearer <key>` (UNAUTHENTICATED without), as TEI's
    /// interceptor asks.
    static func interceptors(apiKey: String?) -> [any ServerInterceptor] {
        apiKey.map { [APIKeyInterceptor(expected: "Bearer \($0)")] } ?? []
    }

    /// Runs one request through `route` (named for the metrics) as the HTTP middleware would: the concurrency limit,
    /// the metrics, TEI's errors as gRPC statuses. The work runs in a task of its own, cancelled when gRPC cancels the
    /// call (the client went away, its deadline passed): a request still queued then leaves the queue unrun.
    func call<T: Sendable>(_ route: String, _ work: @escaping @Sendable (inout Timings) async throws -> T) async throws -> (T, Timings, Duration) {
        let started = ContinuousClock.now
        server.metrics.received(route)
        guard server.limiter.enter() else {
            let failure = APIError.overloaded(limit: server.limiter.limit)
            server.metrics.answered(route, error: failure.errorType.rawValue, timings: Timings(), total: .zero)
            throw RPCError(code: Self.code(failure.errorType), message: failure.error)
        }
        defer { server.limiter.leave() }
        let task = Task { () async throws -> (T, Timings) in
            var timings = Timings()
            let value = try await work(&timings)
            return (value, timings)
        }
        do {
            let (value, timings) = try await withRPCCancellationHandler {
                try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
            } onCancelRPC: {
                task.cancel()
            }
            let total = ContinuousClock.now - started
            server.metrics.answered(route, error: nil, timings: timings, total: total)
            return (value, timings, total)
        } catch {
            // A call cancelled by its client (the queue throws CancellationError) is a client that left, not a shutdown.
            let failure = APIError.from(task.isCancelled && error is CancellationError ? BatchQueue.ClientLeft() : error)
            server.metrics.answered(route, error: failure.errorType.rawValue, timings: Timings(), total: ContinuousClock.now - started)
            throw RPCError(code: Self.code(failure.errorType), message: failure.error)
        }
    }

    static func code(_ type: APIError.Kind) -> RPCError.Code {
        switch type {
        case .validation, .empty: .invalidArgument
        case .overloaded: .resourceExhausted
        case .unhealthy: .unavailable
        case .unauthorized: .unauthenticated
        case .notFound: .notFound
        case .cancelled: .cancelled
        case .tokenizer, .backend, .unsupported: .failedPrecondition
        }
    }

    /// A route's answer as JSON (what the HTTP route would send), to read TEI's fields from.
    static func json(_ value: any Encodable) throws -> JSONValue {
        try JSONValue.parse(try JSONEncoder().encode(AnyEncodable(value)))
    }

    /// TEI's `Metadata` from a request's timings.
    static func metadata(_ timings: Timings, total: Duration) -> Tei_V1_Metadata {
        func nanoseconds(_ d: Duration) -> UInt64 {
            UInt64(max(0, d.components.seconds)) * 1_000_000_000 + UInt64(max(0, d.components.attoseconds) / 1_000_000_000)
        }
        return .with {
            $0.computeChars = UInt32(clamping: timings.characters)
            $0.computeTokens = UInt32(clamping: timings.tokens)
            $0.totalTimeNs = nanoseconds(total)
            $0.tokenizationTimeNs = nanoseconds(timings.tokenization)
            $0.queueTimeNs = nanoseconds(timings.queue)
            $0.inferenceTimeNs = nanoseconds(timings.inference)
        }
    }

    static func direction(_ value: Tei_V1_TruncationDirection) -> JSONValue { .string(value == .left ? "Left" : "Right") }

    /// A stream's messages run concurrently (each a request of its own, batched with the others) and answered in the
    /// order they came.
    static func inOrder<Input: Sendable, Output: Sendable>(
        _ messages: RPCAsyncSequence<Input, any Error>, writer: RPCWriter<Output>,
        _ handle: @escaping @Sendable (Input) async throws -> Output
    ) async throws {
        let (pending, continuation) = AsyncStream<Task<Output, any Error>>.makeStream()
        let spawned = SpawnedTasks<Output>()
        defer { spawned.cancelAll() }  // a stream that ends early (a failed write, an error) takes its waiting messages out of the queue
        // A cancelled call (the client went away) cancels its messages at once: they leave the queue unrun.
        try await withTaskCancellationHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    defer { continuation.finish() }
                    for try await message in messages {
                        let task = Task { try await handle(message) }
                        spawned.add(task)
                        continuation.yield(task)
                    }
                }
                group.addTask {
                    for await task in pending {
                        do { try await writer.write(try await task.value) } catch {
                            task.cancel()
                            throw error
                        }
                    }
                }
                do { try await group.waitForAll() } catch {
                    group.cancelAll()
                    throw error
                }
            }
        } onCancel: {
            spawned.cancelAll()
        }
    }
}

/// The tasks a stream started, to cancel together.
final class SpawnedTasks<Output: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var tasks: [Task<Output, any Error>] = []

    func add(_ task: Task<Output, any Error>) {
        lock.lock()
        tasks.append(task)
        lock.unlock()
    }

    func cancelAll() {
        lock.lock()
        let all = tasks
        lock.unlock()
        for task in all { task.cancel() }
    }
}

/// `authorization: Bearer <key>` on every call.
struct APIKeyInterceptor: ServerInterceptor {
    let expected: String

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: GRPCCore.ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, GRPCCore.ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard request.metadata["authorization"].contains(where: { value in
            if case .string(let text) = value { return text == expected }
            return false
        }) else {
            throw RPCError(code: .unauthenticated, message: "this server needs the metadata `authorization: Bearer <api key>`")
        }
        return try await next(request, context)
    }
}

struct InfoService: Tei_V1_Info.SimpleServiceProtocol {
    let calls: TEIServices

    func info(request: Tei_V1_InfoRequest, context: GRPCCore.ServerContext) async throws -> Tei_V1_InfoResponse {
        let info = calls.server.info, options = calls.server.options
        return .with {
            $0.version = info.version
            $0.modelID = info.modelID
            $0.modelDtype = info.modelDType
            $0.modelType = calls.server.pipeline.model.head == .sequenceClassification
                ? (calls.server.pipeline.model.config.numLabels == 1 ? .reranker : .classifier) : .embedding
            $0.maxConcurrentRequests = UInt32(clamping: options.maxConcurrentRequests)
            $0.maxInputLength = UInt32(clamping: calls.server.pipeline.maxLength)
            $0.maxBatchTokens = UInt32(clamping: options.maxBatchTokens)
            if let requests = options.maxBatchRequests { $0.maxBatchRequests = UInt32(clamping: requests) }
            $0.maxClientBatchSize = UInt32(clamping: options.maxClientBatchSize)
            $0.tokenizationWorkers = 1
        }
    }
}

struct EmbedService: Tei_V1_Embed.SimpleServiceProtocol {
    let calls: TEIServices

    func embed(request: Tei_V1_EmbedRequest, context: GRPCCore.ServerContext) async throws -> Tei_V1_EmbedResponse {
        let body = Body(object: ["inputs": .string(request.inputs), "truncate": .bool(request.truncate), "normalize": .bool(request.normalize),
                                 "truncation_direction": TEIServices.direction(request.truncationDirection)])
        let (vectors, timings, total) = try await calls.call("grpc Embed") { try await calls.server.embed(body, &$0) }
        return .with {
            $0.embeddings = vectors.first ?? []
            $0.metadata = TEIServices.metadata(timings, total: total)
        }
    }

    func embedStream(request: RPCAsyncSequence<Tei_V1_EmbedRequest, any Error>, response: RPCWriter<Tei_V1_EmbedResponse>,
                     context: GRPCCore.ServerContext) async throws {
        try await TEIServices.inOrder(request, writer: response) { try await embed(request: $0, context: context) }
    }

    func embedSparse(request: Tei_V1_EmbedSparseRequest, context: GRPCCore.ServerContext) async throws -> Tei_V1_EmbedSparseResponse {
        throw RPCError(code: .failedPrecondition, message: "EmbedSparse needs a SPLADE model (a masked-LM head pooled to a sparse vector); this server does not serve one")
    }

    func embedSparseStream(request: RPCAsyncSequence<Tei_V1_EmbedSparseRequest, any Error>, response: RPCWriter<Tei_V1_EmbedSparseResponse>,
                           context: GRPCCore.ServerContext) async throws {
        try await TEIServices.inOrder(request, writer: response) { try await embedSparse(request: $0, context: context) }
    }

    func embedAll(request: Tei_V1_EmbedAllRequest, context: GRPCCore.ServerContext) async throws -> Tei_V1_EmbedAllResponse {
        let body = Body(object: ["inputs": .string(request.inputs), "truncate": .bool(request.truncate),
                                 "truncation_direction": TEIServices.direction(request.truncationDirection)])
        let (tokens, timings, total) = try await calls.call("grpc EmbedAll") { try await calls.server.embedAll(body, &$0) }
        return .with {
            $0.tokenEmbeddings = (tokens.first ?? []).map { vector in .with { $0.embeddings = vector } }
            $0.metadata = TEIServices.metadata(timings, total: total)
        }
    }

    func embedAllStream(request: RPCAsyncSequence<Tei_V1_EmbedAllRequest, any Error>, response: RPCWriter<Tei_V1_EmbedAllResponse>,
                        context: GRPCCore.ServerContext) async throws {
        try await TEIServices.inOrder(request, writer: response) { try await embedAll(request: $0, context: context) }
    }
}

struct PredictService: Tei_V1_Predict.SimpleServiceProtocol {
    let calls: TEIServices

    /// `inputs` as the HTTP route takes it: a text, or a pair [a, b].
    func run(_ inputs: JSONValue, truncate: Bool, raw: Bool, direction: Tei_V1_TruncationDirection, route: String) async throws -> Tei_V1_PredictResponse {
        let body = Body(object: ["inputs": inputs, "truncate": .bool(truncate), "raw_scores": .bool(raw),
                                 "truncation_direction": TEIServices.direction(direction)])
        let (answer, timings, total) = try await calls.call(route) { try TEIServices.json(try await calls.server.predict(body, &$0)) }
        let labels = answer.array ?? []
        return .with {
            $0.predictions = labels.map { label in
                .with {
                    $0.score = Float(label.object?["score"]?.double ?? 0)
                    $0.label = label.object?["label"]?.string ?? ""
                }
            }
            $0.metadata = TEIServices.metadata(timings, total: total)
        }
    }

    func predict(request: Tei_V1_PredictRequest, context: GRPCCore.ServerContext) async throws -> Tei_V1_PredictResponse {
        try await run(.string(request.inputs), truncate: request.truncate, raw: request.rawScores, direction: request.truncationDirection,
                      route: "grpc Predict")
    }

    func predictPair(request: Tei_V1_PredictPairRequest, context: GRPCCore.ServerContext) async throws -> Tei_V1_PredictResponse {
        guard request.inputs.count == 2 else {
            throw RPCError(code: .invalidArgument, message: "`inputs` must have two texts (a pair); it has \(request.inputs.count)")
        }
        return try await run(.array(request.inputs.map(JSONValue.string)), truncate: request.truncate, raw: request.rawScores,
                             direction: request.truncationDirection, route: "grpc PredictPair")
    }

    func predictStream(request: RPCAsyncSequence<Tei_V1_PredictRequest, any Error>, response: RPCWriter<Tei_V1_PredictResponse>,
                       context: GRPCCore.ServerContext) async throws {
        try await TEIServices.inOrder(request, writer: response) { try await predict(request: $0, context: context) }
    }

    func predictPairStream(request: RPCAsyncSequence<Tei_V1_PredictPairRequest, any Error>, response: RPCWriter<Tei_V1_PredictResponse>,
                           context: GRPCCore.ServerContext) async throws {
        try await TEIServices.inOrder(request, writer: response) { try await predictPair(request: $0, context: context) }
    }
}

struct RerankService: Tei_V1_Rerank.SimpleServiceProtocol {
    let calls: TEIServices

    func run(query: String, texts: [String], truncate: Bool, raw: Bool, returnText: Bool, direction: Tei_V1_TruncationDirection,
             route: String) async throws -> Tei_V1_RerankResponse {
        let body = Body(object: ["query": .string(query), "texts": .array(texts.map(JSONValue.string)), "truncate": .bool(truncate),
                                 "raw_scores": .bool(raw), "return_text": .bool(returnText),
                                 "truncation_direction": TEIServices.direction(direction)])
        let (ranks, timings, total) = try await calls.call(route) { try await calls.server.rerank(body, &$0) }
        return .with {
            $0.ranks = ranks.map { rank in
                .with {
                    $0.index = UInt32(clamping: rank.index)
                    $0.score = Float(rank.score)
                    if let text = rank.text { $0.text = text }
                }
            }
            $0.metadata = TEIServices.metadata(timings, total: total)
        }
    }

    func rerank(request: Tei_V1_RerankRequest, context: GRPCCore.ServerContext) async throws -> Tei_V1_RerankResponse {
        try await run(query: request.query, texts: request.texts, truncate: request.truncate, raw: request.rawScores,
                      returnText: request.returnText, direction: request.truncationDirection, route: "grpc Rerank")
    }

    /// One text per message; the query and the options from the first.
    func rerankStream(request: RPCAsyncSequence<Tei_V1_RerankStreamRequest, any Error>, context: GRPCCore.ServerContext) async throws -> Tei_V1_RerankResponse {
        var first: Tei_V1_RerankStreamRequest?, texts: [String] = []
        for try await message in request {
            if first == nil { first = message }
            texts.append(message.text)
            if texts.count > calls.server.options.maxClientBatchSize && !calls.server.options.autoSplit { break }
        }
        guard let first else { throw RPCError(code: .invalidArgument, message: "`texts` cannot be empty: the stream sent no message") }
        return try await run(query: first.query, texts: texts, truncate: first.truncate, raw: first.rawScores, returnText: first.returnText,
                             direction: first.truncationDirection, route: "grpc RerankStream")
    }
}

struct TokenizeService: Tei_V1_Tokenize.SimpleServiceProtocol {
    let calls: TEIServices

    func tokenize(request: Tei_V1_EncodeRequest, context: GRPCCore.ServerContext) async throws -> Tei_V1_EncodeResponse {
        let body = Body(object: ["inputs": .string(request.inputs), "add_special_tokens": .bool(request.addSpecialTokens)])
        let (tokens, _, _) = try await calls.call("grpc Tokenize") { _ in try calls.server.tokenize(body) }
        return .with {
            $0.tokens = (tokens.first ?? []).map { token in
                .with {
                    $0.id = UInt32(clamping: token.id)
                    $0.text = token.text
                    $0.special = token.special
                    if let start = token.start { $0.start = UInt32(clamping: start) }
                    if let stop = token.stop { $0.stop = UInt32(clamping: stop) }
                }
            }
        }
    }

    func tokenizeStream(request: RPCAsyncSequence<Tei_V1_EncodeRequest, any Error>, response: RPCWriter<Tei_V1_EncodeResponse>,
                        context: GRPCCore.ServerContext) async throws {
        try await TEIServices.inOrder(request, writer: response) { try await tokenize(request: $0, context: context) }
    }

    func decode(request: Tei_V1_DecodeRequest, context: GRPCCore.ServerContext) async throws -> Tei_V1_DecodeResponse {
        let body = Body(object: ["ids": .array(request.ids.map { .number(Double($0)) }), "skip_special_tokens": .bool(request.skipSpecialTokens)])
        let (texts, _, _) = try await calls.call("grpc Decode") { _ in try calls.server.decode(body) }
        return .with { $0.text = texts.first ?? "" }
    }

    func decodeStream(request: RPCAsyncSequence<Tei_V1_DecodeRequest, any Error>, response: RPCWriter<Tei_V1_DecodeResponse>,
                      context: GRPCCore.ServerContext) async throws {
        try await TEIServices.inOrder(request, writer: response) { try await decode(request: $0, context: context) }
    }
}
