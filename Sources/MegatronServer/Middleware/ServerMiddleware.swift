import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

// The model routes' cross-cutting work as Hummingbird middleware, outermost first: metrics → errors → API key →
// concurrency limit → timing headers → payload limit → the route's handler (which reads the body, runs the task and
// writes the answer). `Server.addRoutes` puts them on the model routes' group.

/// Counts each request as it arrives and as it is answered (TEI's `te_request_*` metrics, by route), with its
/// timings; notes for the queue whether its client has left.
struct MetricsMiddleware: RouterMiddleware {
    let metrics: ServerMetrics
    let clientWatch: ClientWatch

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now, route = context.endpointPath ?? request.uri.path
        let record = context.record, channel = context.channel, watch = clientWatch
        record.timings.clientLeft = { watch.hasLeft(channel) }
        metrics.received(route)
        defer { metrics.answered(route, error: record.failure?.rawValue, timings: record.timings, total: ContinuousClock.now - started) }
        return try await next(request, context)
    }
}

/// Every failure as TEI's JSON error (status and `error_type` from `APIError.from`); server errors are logged.
struct ErrorMiddleware: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let failure = APIError.from(error)
            if failure.status.code >= 500 && failure.errorType != .unhealthy { logger.error("\(request.method) \(request.uri.path): \(failure.error)") }
            if failure.errorType == .cancelled { logger.debug("\(request.method) \(request.uri.path): \(failure.error)") }
            context.record.failure = failure.errorType
            return Server.json(failure, status: failure.status)
        }
    }
}

/// `--api-key`: the header `Authorization: Bearer <key>`, or 401.
struct APIKeyMiddleware: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        guard request.headers[.authorization] == "Bearer \(key)" else {
            throw APIError(.unauthorized, .unauthorized, "this server needs the header `Authorization: Bearer <api key>`")
        }
        return try await next(request, context)
    }
}

/// `--max-concurrent-requests`: a request over the limit is answered 429 at once (TEI queues none).
struct ConcurrencyMiddleware: RouterMiddleware {
    let limiter: ConcurrencyLimit

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        guard limiter.enter() else {
            throw APIError.overloaded(limit: limiter.limit)
        }
        defer { limiter.leave() }
        return try await next(request, context)
    }
}

/// TEI's timing headers on a successful answer: compute and total time, characters, tokens, and the time spent
/// tokenizing, queued and in inference (milliseconds).
struct TimingHeadersMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var response = try await next(request, context)
        let timings = context.record.timings, total = ContinuousClock.now - started
        func milliseconds(_ d: Duration) -> String { String(Int((Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15).rounded())) }
        response.headers[HTTPField.Name("x-compute-time")!] = milliseconds(total)
        response.headers[HTTPField.Name("x-compute-characters")!] = String(timings.characters)
        response.headers[HTTPField.Name("x-compute-tokens")!] = String(timings.tokens)
        response.headers[HTTPField.Name("x-total-time")!] = milliseconds(total)
        response.headers[HTTPField.Name("x-tokenization-time")!] = milliseconds(timings.tokenization)
        response.headers[HTTPField.Name("x-queue-time")!] = milliseconds(timings.queue)
        response.headers[HTTPField.Name("x-inference-time")!] = milliseconds(timings.inference)
        return response
    }
}

/// `--payload-limit`: the body collected up to the limit (413 past it), so that the handler reads it whole.
struct PayloadLimitMiddleware: RouterMiddleware {
    let limit: Int

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        var request = request
        do { _ = try await request.collectBody(upTo: limit) } catch is NIOTooManyBytesError {
            throw APIError.payloadTooLarge(limit: limit)
        }
        return try await next(request, context)
    }
}

/// The methods each path serves (filled as the routes are added).
final class AllowedMethods: @unchecked Sendable {
    private let lock = NSLock()
    private var byPath: [String: Set<HTTPRequest.Method>] = [:]

    func add(_ method: HTTPRequest.Method, _ path: String) {
        lock.lock()
        byPath[path, default: []].insert(method)
        if method == .get { byPath[path, default: []].insert(.head) }
        lock.unlock()
    }

    func methods(_ path: String) -> Set<HTTPRequest.Method>? {
        lock.lock()
        defer { lock.unlock() }
        return byPath[path]
    }
}

/// A path served for other methods: 405 with `Allow` (as TEI's router answers), not 404.
struct MethodMiddleware: RouterMiddleware {
    let allowed: AllowedMethods

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        guard let methods = allowed.methods(request.uri.path), !methods.contains(request.method) else { return try await next(request, context) }
        return Response(status: .methodNotAllowed, headers: [.allow: methods.map(\.rawValue).sorted().joined(separator: ",")])
    }
}
