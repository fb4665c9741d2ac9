import Foundation
import Prometheus

/// `/metrics`: Prometheus text with text-embeddings-inference's metric names (`te_*`) where they apply.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let seconds: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                       .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
                                       .seconds(5), .seconds(10), .seconds(30)]
    let requestDuration: DurationHistogram
    let tokenizationDuration: DurationHistogram
    let queueDuration: DurationHistogram
    let inferenceDuration: DurationHistogram
    let inputLength: ValueHistogram
    let batchSize: ValueHistogram
    let batchTokens: ValueHistogram
    let batchDuration: DurationHistogram
    let queueSize: Gauge

    init() {
        requestDuration = registry.makeDurationHistogram(descriptor: Self.name("te_request_duration", "Whole request time"), buckets: seconds)
        tokenizationDuration = registry.makeDurationHistogram(descriptor: Self.name("te_request_tokenization_duration", "Tokenization time per request"), buckets: seconds)
        queueDuration = registry.makeDurationHistogram(descriptor: Self.name("te_request_queue_duration", "Time a request waited for its batch"), buckets: seconds)
        inferenceDuration = registry.makeDurationHistogram(descriptor: Self.name("te_request_inference_duration", "Forward time of a request's batch"), buckets: seconds)
        let lengths: [Double] = [8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384]
        inputLength = registry.makeValueHistogram(descriptor: Self.name("te_request_input_length", "Tokens per request"), buckets: lengths)
        batchSize = registry.makeValueHistogram(descriptor: Self.name("te_batch_next_size", "Requests per batch"), buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
        batchTokens = registry.makeValueHistogram(descriptor: Self.name("te_batch_next_tokens", "Tokens per batch"), buckets: lengths)
        batchDuration = registry.makeDurationHistogram(descriptor: Self.name("te_batch_inference_duration", "Forward time per batch"), buckets: seconds)
        queueSize = registry.makeGauge(descriptor: Self.name("te_queue_size", "Requests waiting for a batch"))
    }

    /// A metric's name (no unit suffix: TEI's names) and help text.
    static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// A request arrived at `route`.
    func received(_ route: String) {
        registry.makeCounter(descriptor: Self.name("te_request_count", "Requests received"), labels: [("method", route)]).increment()
    }

    /// A request was answered (successfully, or with the error type).
    func answered(_ route: String, error: String?, timings: Timings, total: Duration) {
        if let error {
            registry.makeCounter(descriptor: Self.name("te_request_failure", "Requests that failed"), labels: [("err", error.lowercased())]).increment()
            return
        }
        registry.makeCounter(descriptor: Self.name("te_request_success", "Requests answered"), labels: [("method", route)]).increment()
        requestDuration.record(total)
        tokenizationDuration.record(timings.tokenization)
        queueDuration.record(timings.queue)
        inferenceDuration.record(timings.inference)
        inputLength.record(Double(timings.tokens))
    }

    /// A batch ran.
    func batch(_ timing: BatchQueue.Timing, waiting: Int) {
        batchSize.record(Double(timing.batchRequests))
        batchTokens.record(Double(timing.batchTokens))
        batchDuration.record(timing.inference)
        queueSize.set(to: Double(waiting))
    }

    /// The Prometheus text.
    func text() -> String { registry.emitToString() }
}
