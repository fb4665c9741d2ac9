import Foundation

/// What one model request cost and how it ended, shared by the middleware and the handler of that request (the
/// request context is a value; this record is the one thing they all write to): the handler adds the times and sizes
/// of its work, the error middleware the kind of failure, and the metrics middleware reads both when it is done.
final class RequestRecord: @unchecked Sendable {
    var timings = Timings()
    /// The kind of error the answer reports (nil: success).
    var failure: APIError.Kind?
}
