import BERTTokenizer
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MegatronBERT
import NIOCore
import ServiceLifecycle

/// `megatron-bert serve`: text-embeddings-inference's HTTP API (and Hugging Face Inference API task routes) over one
/// pipeline, every model route's inputs batched across requests by one `BatchQueue`.
///
/// ```swift
/// let server = try Server(pipeline: try Pipeline(path: "/models/minilm"), options: ServerOptions())
/// try await server.run { address in print("listening on \(address)") }   // until SIGTERM / SIGINT
/// ```
public final class Server: Sendable {
    public let pipeline: Pipeline
    public let options: ServerOptions
    public let queue: BatchQueue
    /// The pooling of `/embed` and `/v1/embeddings`.
    public let pooling: Pooling
    /// What `POST /` serves.
    public let defaultRoute: String
    let limiter: ConcurrencyLimit
    let clientWatch = ClientWatch()
    let logger: Logger
    let metrics = ServerMetrics()
    let connections: ConnectionGuard

    /// - Parameter defaultTask: the route `POST /` serves ("embed", "fill-mask"); nil: what the model's head is for.
    public init(pipeline: Pipeline, options: ServerOptions, defaultTask: String? = nil, pooling: Pooling? = nil,
                logger: Logger = Logger(label: "megatron-bert")) throws {
        self.pipeline = pipeline
        self.options = options
        self.logger = logger
        self.pooling = pooling ?? options.pooling ?? Self.sentenceTransformersPooling(pipeline.source) ?? .mean
        if self.pooling == .pooler && !pipeline.model.hasPooler {
            throw ModelError(.unsupported, "\(pipeline.source) has no pooler, so --pooling pooler cannot work: use mean, cls or max")
        }
        if let defaultTask, !Self.tasks.contains(defaultTask) {
            throw ModelError("--task \(defaultTask) is not a route POST / can serve: one of \(Self.tasks.joined(separator: ", "))")
        }
        defaultRoute = defaultTask ?? Self.route(for: pipeline.model.head)
        limiter = ConcurrencyLimit(options.maxConcurrentRequests)
        connections = ConnectionGuard(limits: .init(header: options.headerTimeout, body: options.bodyTimeout, keepAlive: options.keepAliveTimeout,
                                                     maxConnections: options.connectionCap, payloadLimit: options.payloadLimit),
                                      registry: metrics.registry)
        let metrics = self.metrics
        queue = BatchQueue(executor: pipeline.executor, maxBatchTokens: options.maxBatchTokens,
                           maxBatchRequests: options.maxBatchRequests, onBatch: { metrics.batch($0, waiting: $1) })
    }

    /// sentence-transformers' pooling (`1_Pooling/config.json` beside the model), if the model has one.
    static func sentenceTransformersPooling(_ path: String) -> Pooling? {
        guard let data = FileManager.default.contents(atPath: path + "/1_Pooling/config.json"),
              let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        if config["pooling_mode_cls_token"] as? Bool == true { return .cls }
        if config["pooling_mode_mean_tokens"] as? Bool == true { return .mean }
        if config["pooling_mode_max_tokens"] as? Bool == true { return .max }
        return nil
    }

    /// The model routes `POST /` (and `--task`) can name: every task's route.
    public static let tasks = TaskDescriptor.all.map(\.routeName)

    /// What a head is for: the route `POST /` serves by default (the first task that names the head; embed for the
    /// encoder alone).
    static func route(for head: ModelHead) -> String {
        TaskDescriptor.all.first { $0.heads?.contains(head) == true }?.routeName ?? TaskDescriptor.embed.routeName
    }

    /// The routes this model's head can serve (printed at start); the others answer 424.
    public var liveRoutes: [String] {
        let head = pipeline.model.head
        // The tasks every model serves among TEI's routes, then those of this model's head (and /rerank for a
        // one-label classifier).
        let everyModel = TaskDescriptor.all.filter { $0.heads == nil }.map { "POST " + $0.route }
        let byHead = TaskDescriptor.all.filter { $0.heads != nil && $0.serves(head) }.map { "POST " + $0.route }
        let rerank = head == .sequenceClassification && pipeline.model.config.numLabels == 1 ? ["POST /rerank"] : []
        return ["GET /health", "GET /info", "GET /metrics", "GET /openapi.json"] + everyModel
            + ["POST /embed_all", "POST /v1/embeddings", "POST /embeddings", "POST /similarity", "POST /tokenize", "POST /decode"] + byHead + rerank
            + ["POST / and /invocations (\(defaultRoute))", "POST /vertex"]
    }

    /// Runs one request through the model before the server listens, so that the first client does not pay for
    /// the kernels' first use.
    public func warmUp() async throws {
        let task = try EmbeddingTask(pipeline: pipeline, pooling: pooling)
        let (rows, plan) = try task.prepare(["Warm up."])
        _ = try task.finish(try await queue.submit(rows, work: task.work).outputs, plan: plan)
    }

    /// Listens until SIGTERM or SIGINT, then stops accepting connections, lets the requests in flight finish (for
    /// at most `options.gracefulShutdownTimeout`; then those still queued are answered 503) and returns.
    /// `onListening` gets the bound address ("127.0.0.1:3000"); with `options.grpcPort`, `onGRPCListening` gets the
    /// gRPC server's.
    public func run(onListening: @escaping @Sendable (String) -> Void = { _ in },
                    onGRPCListening: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        let router = Router(context: ServerContext.self, options: .autoGenerateHeadEndpoints)
        addRoutes(to: router)
        let options = self.options
        let app = Application(
            router: router,
            server: .guarded(connections, configuration: .init()),
            configuration: .init(address: .hostname(options.hostname, port: options.port), serverName: "megatron-bert"),
            onServerRunning: { channel in
                let address = channel.localAddress
                onListening("\(address?.ipAddress ?? options.hostname):\(address?.port ?? options.port)")
            },
            logger: logger)
        let grpc = options.grpcPort.map {
            TEIGRPCService(server: self, host: options.hostname, port: $0, deadline: options.gracefulShutdownTimeout, onListening: onGRPCListening)
        }
        let service = DeadlineService(app: app, grpc: grpc, queue: queue, connections: connections, deadline: options.gracefulShutdownTimeout,
                                      logger: logger)
        try await ServiceGroup(configuration: .init(services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint],
                                                    logger: logger)).run()
        queue.stop()
    }
}

/// The application, with a deadline on its graceful shutdown: once SIGTERM or SIGINT starts one (the application stops
/// accepting connections, and those not inside a running request are closed at once), the requests in flight have
/// `deadline` to finish; then the queue answers those still waiting (503, "the server is shutting down"), the batch
/// running finishes and is answered, and every connection still open is closed, whatever its client is doing.
struct DeadlineService<App: Service>: Service {
    let app: App
    /// The gRPC server, when there is one: it shuts down beside the application, with the same deadline.
    let grpc: TEIGRPCService?
    let queue: BatchQueue
    let connections: ConnectionGuard
    let deadline: Duration
    let logger: Logger

    func run() async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await app.run()
                return true
            }
            group.addTask {
                try await gracefulShutdown()
                try await Task.sleep(for: deadline)
                if queue.waiting > 0 { logger.warning("shutting down: \(queue.waiting) requests still queued after \(deadline) are answered 503") }
                queue.stop()
                while queue.isRunning { try await Task.sleep(for: .milliseconds(10)) }  // the batch running finishes
                try await Task.sleep(for: .milliseconds(200))  // its answers and the 503s written
                if connections.openConnections > 0 { logger.warning("shutting down: \(connections.openConnections) connections closed") }
                connections.closeAll()
                return false
            }
            if let grpc {
                group.addTask {
                    try await grpc.run()
                    return true
                }
            }
            // Until the application (and the gRPC server) have finished; then the deadline, if it is still waiting, is
            // called off.
            var running = grpc == nil ? 1 : 2
            while running > 0, let finished = try await group.next() { if finished { running -= 1 } }
            group.cancelAll()
        }
    }
}

/// Requests in flight, refused beyond the limit (TEI's `--max-concurrent-requests`: a 429 at once, never a queue).
final class ConcurrencyLimit: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    let limit: Int

    init(_ limit: Int) { self.limit = max(1, limit) }

    func enter() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard count < limit else { return false }
        count += 1
        return true
    }

    func leave() {
        lock.lock()
        count -= 1
        lock.unlock()
    }
}
