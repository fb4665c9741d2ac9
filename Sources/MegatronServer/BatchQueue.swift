import Foundation
import MegatronBERT

/// Dynamic batching: the rows of concurrent requests wait in one queue, and one worker thread takes as many as fit
/// the token budget (`maxBatchTokens`, and at most `maxBatchRequests` requests), runs them through the shared
/// executor — the same `SortedBatchExecutor` path the command line uses: sorted by length, in padded batches of
/// `batchSize` sequences, or for embeddings on the CPU packed without padding — and hands each request its own
/// outputs, in order. Requests tokenize (prepare) on their own tasks, so the next batch is ready while one runs. A
/// request whose task is cancelled, or whose client went away (`clientLeft`, asked when the worker would take it),
/// leaves the queue if it has not started.
///
/// ```swift
/// let queue = BatchQueue(executor: pipeline.executor, maxBatchTokens: 16384)
/// let task = try EmbeddingTask(pipeline: pipeline)
/// let (rows, plan) = try task.prepare(["A sentence."])
/// let vectors = try task.finish(try await queue.submit(rows, work: task.work).outputs, plan: plan)
/// ```
public final class BatchQueue: @unchecked Sendable {
    /// What one request waited for and what its batch cost.
    public struct Timing: Sendable {
        /// From submission to the start of its batch.
        public var queue: Duration
        /// Its batch's forward passes.
        public var inference: Duration
        /// Requests in its batch.
        public var batchRequests: Int
        /// Tokens in its batch.
        public var batchTokens: Int
    }

    struct Pending {
        let id: UInt64
        let rows: [ModelRow]
        let work: RowWork
        let tokens: Int
        let submitted: ContinuousClock.Instant
        let clientLeft: @Sendable () -> Bool
        let continuation: CheckedContinuation<(outputs: [RowOutput], timing: Timing), Error>
    }

    public let executor: any BatchExecutor
    public let maxBatchTokens: Int
    public let maxBatchRequests: Int?
    private let condition = NSCondition()
    private var pending: [Pending] = []
    private var nextID: UInt64 = 0
    private var stopping = false
    private var worker: Thread?
    /// Called after every batch (for metrics): the batch's size and time, and the requests still waiting.
    private let onBatch: @Sendable (Timing, Int) -> Void

    public init(executor: any BatchExecutor, maxBatchTokens: Int, maxBatchRequests: Int? = nil,
                onBatch: @escaping @Sendable (Timing, Int) -> Void = { _, _ in }) {
        self.executor = executor
        self.maxBatchTokens = max(1, maxBatchTokens)
        self.maxBatchRequests = maxBatchRequests.map { max(1, $0) }
        self.onBatch = onBatch
        let thread = Thread { [unowned self] in self.work() }
        thread.name = "megatron-bert batches"
        thread.stackSize = 8 << 20
        worker = thread
        thread.start()
    }

    deinit { stop() }

    /// Whether the worker is running a batch now.
    public var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return running
    }
    private var running = false

    /// Requests waiting for a batch.
    public var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return pending.count
    }

    /// Ends the worker after the batch it is running; requests still waiting get a `CancellationError`.
    public func stop() {
        condition.lock()
        stopping = true
        let left = pending
        pending.removeAll()
        condition.broadcast()
        condition.unlock()
        for request in left { request.continuation.resume(throwing: CancellationError()) }
    }

    /// A request's client went away before the request ran.
    public struct ClientLeft: Error {}

    /// Runs `rows` in a batch with other requests' rows of the same work; their outputs in order.
    ///
    /// - Parameter clientLeft: asked when the worker would take the request: true drops it (`ClientLeft` is thrown).
    public func submit(_ rows: [ModelRow], work: RowWork,
                       clientLeft: @escaping @Sendable () -> Bool = { false }) async throws -> (outputs: [RowOutput], timing: Timing) {
        if rows.isEmpty { return ([], Timing(queue: .zero, inference: .zero, batchRequests: 0, batchTokens: 0)) }
        let id = allocateID()
        let tokens = rows.reduce(0) { $0 + $1.encodings.reduce(0) { $0 + $1.count } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                condition.lock()
                defer { condition.unlock() }
                // Cancelled before it is queued: the cancellation flag is set before `onCancel` runs, and `onCancel`
                // takes the lock, so a request is either refused here or found in `pending` there.
                if stopping || Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                pending.append(Pending(id: id, rows: rows, work: work, tokens: tokens, submitted: .now, clientLeft: clientLeft,
                                       continuation: continuation))
                condition.signal()
            }
        } onCancel: {
            condition.lock()
            let index = pending.firstIndex { $0.id == id }
            let request = index.map { pending.remove(at: $0) }  // nil: not queued yet, or already running
            condition.unlock()
            request?.continuation.resume(throwing: CancellationError())
        }
    }

    private func allocateID() -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        nextID += 1
        return nextID
    }

    /// The worker: waits for requests, takes a batch (the oldest request's work; FIFO within the budget), runs it.
    private func work() {
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                return
            }
            let work = pending[0].work
            var batch: [Pending] = [], tokens = 0, index = 0, departed: [Pending] = []
            while index < pending.count {
                let request = pending[index]
                if request.work == work && request.clientLeft() {
                    departed.append(pending.remove(at: index))
                    continue
                }
                let fits = batch.isEmpty || (tokens + request.tokens <= maxBatchTokens && batch.count < (maxBatchRequests ?? .max))
                if request.work == work && fits {
                    batch.append(pending.remove(at: index))
                    tokens += request.tokens
                } else {
                    if request.work == work { break }  // the budget is full
                    index += 1
                }
            }
            running = !batch.isEmpty
            condition.unlock()
            for request in departed { request.continuation.resume(throwing: ClientLeft()) }
            if !batch.isEmpty { run(batch, work: work, tokens: tokens) }
            condition.lock()
            running = false
            condition.unlock()
        }
    }

    private func run(_ batch: [Pending], work: RowWork, tokens: Int) {
        let started = ContinuousClock.now
        let rows = batch.flatMap(\.rows)
        let result = Result { try executor.run(rows, work: work) }
        let inference = ContinuousClock.now - started
        var offset = 0
        for request in batch {
            let timing = Timing(queue: started - request.submitted, inference: inference, batchRequests: batch.count, batchTokens: tokens)
            switch result {
            case .success(let outputs):
                request.continuation.resume(returning: (Array(outputs[offset..<offset + request.rows.count]), timing))
            case .failure(let error):
                request.continuation.resume(throwing: error)
            }
            offset += request.rows.count
        }
        onBatch(Timing(queue: .zero, inference: inference, batchRequests: batch.count, batchTokens: tokens), waiting)
    }
}
