import Foundation

/// Seconds spent in each stage of a command's work, summed over the command, for `MEGATRON_BERT_TIMINGS=1` (the
/// command line prints them on standard error at the end): where an embed job's time goes — reading, tokenizing,
/// the forward passes, pooling, formatting and writing. Stages that run on other threads overlap the rest.
///
/// ```swift
/// let ids = StageTimes.shared.measure("tokenize") { try tokenizer.encode(text) }
/// print(StageTimes.shared.report)  // "tokenize 0.012 s"
/// ```
public final class StageTimes: @unchecked Sendable {
    /// The process's timings; measuring costs nothing unless `MEGATRON_BERT_TIMINGS=1`.
    public static let shared = StageTimes(enabled: Settings.current[.timings] == "1")

    public let enabled: Bool
    private let lock = NSLock()
    private var seconds: [String: Double] = [:]
    private var order: [String] = []

    public init(enabled: Bool) { self.enabled = enabled }

    /// Runs `body`, adding its wall time to `stage` when enabled.
    public func measure<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer { add(stage, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        return try body()
    }

    /// Adds `value` seconds to `stage`.
    public func add(_ stage: String, _ value: Double) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        if seconds[stage] == nil { order.append(stage) }
        seconds[stage, default: 0] += value
    }

    /// One "stage seconds" pair per stage, in the order they first ran.
    public var report: String {
        lock.lock()
        defer { lock.unlock() }
        return order.map { String(format: "%@ %.3f s", $0, seconds[$0] ?? 0) }.joined(separator: ", ")
    }
}
