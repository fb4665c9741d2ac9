import BERTTokenizer
import Foundation
import MegatronBERT
import Testing
@testable import MegatronServer

/// The server's queue, with an executor that records its batches and holds the first until told: what waits while a
/// batch runs forms the next batch (FIFO within the token budget, one work kind at a time), each request gets its own
/// rows' outputs, and a request whose client left or whose task was cancelled leaves the queue without running.
@Suite struct BatchQueueTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
    static let pipeline = try! Pipeline(path: root + "/MegatronBERTTests/Fixtures/tasks/embedding")

    /// Answers each row with its token count; the first batch waits for `release()`.
    final class RecordingExecutor: BatchExecutor, @unchecked Sendable {
        let model: MegatronBERTModel
        private let condition = NSCondition()
        private var held = true
        private(set) var batches: [(work: RowWork, lengths: [Int])] = []

        init(model: MegatronBERTModel) { self.model = model }

        func run(_ rows: [ModelRow], work: RowWork) throws -> [RowOutput] {
            condition.lock()
            batches.append((work, rows.map { $0.encodings[0].count }))
            condition.broadcast()
            while held { condition.wait() }
            condition.unlock()
            return rows.map { RowOutput(pooled: [Float($0.encodings[0].count)]) }
        }

        func release() {
            condition.lock()
            held = false
            condition.broadcast()
            condition.unlock()
        }

        /// Waits until `count` batches have started (polling: blocking would hold one of the few threads the
        /// submitting tasks need).
        func waitForBatches(_ count: Int) async throws {
            while recorded.count < count { try await Task.sleep(for: .milliseconds(2)) }
        }

        var recorded: [(work: RowWork, lengths: [Int])] {
            condition.lock()
            defer { condition.unlock() }
            return batches
        }
    }

    /// A row of `n` tokens.
    static func row(_ n: Int) throws -> ModelRow {
        let tokenizer = pipeline.tokenizer
        let word = try tokenizer.encode("Paris").ids[1]
        return ModelRow(try tokenizer.encoding(ids: Array(repeating: word, count: n)))
    }

    /// Waits until `count` requests are queued.
    static func waitUntilQueued(_ queue: BatchQueue, _ count: Int) async throws {
        while queue.waiting < count { try await Task.sleep(for: .milliseconds(2)) }
    }

    typealias Submitted = Task<(outputs: [RowOutput], timing: BatchQueue.Timing), Error>

    /// A queue whose worker is held inside its first batch (one row of 3 tokens): what is submitted next waits.
    static func heldQueue(maxBatchTokens: Int) async throws -> (RecordingExecutor, BatchQueue, first: Submitted) {
        let executor = RecordingExecutor(model: pipeline.model)
        let queue = BatchQueue(executor: executor, maxBatchTokens: maxBatchTokens)
        let first = Submitted { try await queue.submit([try Self.row(3)], work: .encoder) }
        try await executor.waitForBatches(1)
        return (executor, queue, first)
    }

    @Test func whatWaitsFormsTheNextBatchAndEachGetsItsOwnRows() async throws {
        let (executor, queue, first) = try await Self.heldQueue(maxBatchTokens: 20)
        defer { queue.stop() }
        // While the first batch is held, requests of two rows (n and n + 1 tokens) queue: 9 + 11 tokens fill the
        // budget of 20, so 13 waits, and 13 + 15 do not fit together; the head request is another kind of work, taken
        // when it is the oldest.
        var tasks: [Submitted] = []
        for (n, work) in [(4, RowWork.encoder), (9, .head), (5, .encoder), (6, .encoder), (7, .encoder)] {
            tasks.append(Task { try await queue.submit(work == .head ? [try Self.row(n)] : [try Self.row(n), try Self.row(n + 1)], work: work) })
            try await Self.waitUntilQueued(queue, tasks.count)
        }
        executor.release()
        _ = try await first.value
        let answers = try await tasks.asyncMap { try await $0.value }
        let batches = executor.recorded.map { "\($0.work):\($0.lengths)" }
        #expect(batches == ["encoder:[3]", "encoder:[4, 5, 5, 6]", "head:[9]", "encoder:[6, 7]", "encoder:[7, 8]"], "\(batches)")
        #expect(answers.map { $0.outputs.map { Int($0.pooled![0]) } } == [[4, 5], [9], [5, 6], [6, 7], [7, 8]])
        #expect(answers[0].timing.batchRequests == 2 && answers[0].timing.batchTokens == 20)
    }

    @Test func aRequestWhoseClientLeftIsDroppedUnrun() async throws {
        let (executor, queue, first) = try await Self.heldQueue(maxBatchTokens: 100)
        defer { queue.stop() }
        let left = Task { try await queue.submit([try Self.row(4)], work: .encoder, clientLeft: { true }) }
        try await Self.waitUntilQueued(queue, 1)
        let stays = Task { try await queue.submit([try Self.row(5)], work: .encoder, clientLeft: { false }) }
        try await Self.waitUntilQueued(queue, 2)
        let cancelled = Task { try await queue.submit([try Self.row(6)], work: .encoder) }
        try await Self.waitUntilQueued(queue, 3)
        cancelled.cancel()
        executor.release()
        _ = try await first.value
        await #expect(throws: BatchQueue.ClientLeft.self) { try await left.value }
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(try await stays.value.outputs.map { Int($0.pooled![0]) } == [5])
        #expect(executor.recorded.map(\.lengths) == [[3], [5]], "the rows of the requests that left never ran")
    }

    @Test func stopAnswersWhatWaits() async throws {
        let (executor, queue, first) = try await Self.heldQueue(maxBatchTokens: 100)
        let waiting = Task { try await queue.submit([try Self.row(4)], work: .encoder) }
        try await Self.waitUntilQueued(queue, 1)
        queue.stop()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        executor.release()
        #expect(try await first.value.outputs.count == 1, "the batch that was running finishes")
        await #expect(throws: CancellationError.self) { try await queue.submit([try Self.row(2)], work: .encoder) }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
