import Foundation
import MegatronBERT

/// How `megatron-bert serve` behaves: text-embeddings-inference's flags, names and defaults.
public struct ServerOptions: Sendable {
    /// The address to listen on (TEI: `--hostname`, default 0.0.0.0).
    public var hostname = "0.0.0.0"
    /// TEI: `--port`, default 3000; 0 picks a free port (printed at start).
    public var port = 3000
    /// Requests in flight at once; beyond it a request is answered 429 at once.
    public var maxConcurrentRequests = 512
    /// Tokens per batch the worker takes from the queue.
    public var maxBatchTokens = 16384
    /// Requests per batch (nil: as many as fit the tokens).
    public var maxBatchRequests: Int?
    /// Inputs per request; more is a 422, unless `autoSplit`.
    public var maxClientBatchSize = 32
    /// Serve a client batch larger than `maxClientBatchSize` by splitting it across model batches.
    public var autoSplit = false
    /// Truncate inputs over the model's limit instead of answering 422 (TEI: `--auto-truncate`).
    public var autoTruncate = false
    /// The largest request body, in bytes (413 beyond it).
    public var payloadLimit = 2_000_000
    /// When set, requests need `Authorization: Bearer <key>` (401 without).
    public var apiKey: String?
    /// Sentence-vector pooling; nil: the model's sentence-transformers `1_Pooling/config.json`, else mean.
    public var pooling: Pooling?
    /// The model's name in `/info` and `/v1/embeddings` answers.
    public var modelID = "megatron-bert"
    /// The weights' precision, for `/info`.
    public var dtype = "float32"
    /// After SIGTERM / SIGINT, how long the requests in flight may take to finish; then those still queued are
    /// answered 503 (the batch running finishes) and the server exits.
    public var gracefulShutdownTimeout: Duration = .seconds(30)
    /// From a request's first byte (or a new connection) to its complete head; a connection over it is closed.
    public var headerTimeout: Duration = .seconds(30)
    /// The longest wait between two pieces of a request's body; a connection over it is closed.
    public var bodyTimeout: Duration = .seconds(30)
    /// How long a connection may stay idle between requests.
    public var keepAliveTimeout: Duration = .seconds(60)
    /// Open connections at once; a new one past it is closed at once (nil: the descriptor limit less 64, at most
    /// 10,000, so that accepting never meets the limit).
    public var maxConnections: Int?
    /// Serve TEI's gRPC API on this port too (nil: HTTP only; 0: any free port, printed).
    public var grpcPort: Int?

    /// `maxConnections`, or what the process's descriptor limit allows.
    public var connectionCap: Int {
        if let maxConnections { return maxConnections }
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1000 }
        return max(8, min(10_000, Int(clamping: limit.rlim_cur) - 64))
    }

    public init() {}
}
