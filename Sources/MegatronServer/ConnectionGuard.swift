import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Prometheus

/// What keeps a connection from pinning the server: time limits on reading a request's head, on a body that stops
/// coming and on an idle keep-alive connection; a cap on open connections (past it a new one is closed at once, so
/// that the descriptor limit is never reached and accepting never spins); HTTP/1.1's connection rules (HTTP/1.0 and
/// `Connection: close` closed after the answer, an early error on a request whose body is still coming closes the
/// connection instead of reading the body); a `Content-Length` over the payload limit answered 413 from the head;
/// `Expect: 100-continue` answered; and, at shutdown, the connections not inside a running request closed at once and
/// the rest once the deadline passes.
///
/// One per server; `HTTPServerBuilder.guarded(_:configuration:)` puts its handlers on every connection.
///
/// ```swift
/// let connections = ConnectionGuard(limits: .init(header: .seconds(30), body: .seconds(30), keepAlive: .seconds(60),
///                                                 maxConnections: 1000, payloadLimit: 2_000_000), registry: registry)
/// let app = Application(router: router, server: .guarded(connections, configuration: .init()))
/// // after the shutdown deadline: connections.closeAll()
/// ```
public final class ConnectionGuard: Sendable {
    /// The limits, from `ServerOptions`.
    public struct Limits: Sendable {
        /// From a connection's first byte of a request (or its opening) to the request's complete head.
        public var header: Duration
        /// Between two pieces of a request's body.
        public var body: Duration
        /// A connection idle between requests.
        public var keepAlive: Duration
        /// Open connections at once.
        public var maxConnections: Int
        /// The largest body (a longer `Content-Length` is answered 413 from the head).
        public var payloadLimit: Int
    }

    let limits: Limits
    private let open = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    private let closing = NIOLockedValueBox(false)
    let timeouts: (head: Counter, body: Counter, idle: Counter)
    let refused: Counter
    let openGauge: Gauge

    public init(limits: Limits, registry: PrometheusCollectorRegistry) {
        self.limits = limits
        func timeout(_ phase: String) -> Counter {
            registry.makeCounter(descriptor: ServerMetrics.name("megatron_bert_connection_timeouts_total",
                                                                "Connections closed by a timeout, by what they were doing"),
                                 labels: [("phase", phase)])
        }
        timeouts = (timeout("head"), timeout("body"), timeout("idle"))
        refused = registry.makeCounter(descriptor: ServerMetrics.name("megatron_bert_connections_refused_total",
                                                                      "Connections closed at once past --max-connections"))
        openGauge = registry.makeGauge(descriptor: ServerMetrics.name("megatron_bert_connections_open", "Open connections"))
    }

    /// The connections open now.
    public var openConnections: Int { open.withLockedValue { $0.count } }

    /// Closes every open connection (the shutdown deadline has passed).
    public func closeAll() {
        closing.withLockedValue { $0 = true }
        for channel in open.withLockedValue({ Array($0.values) }) { channel.close(promise: nil) }
    }

    /// Registers a new connection; false (and the connection is to be closed) past the cap or after `closeAll`.
    func admit(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let admitted = open.withLockedValue { open -> Bool in
            guard open.count < limits.maxConnections else { return false }
            open[id] = channel
            return true
        }
        guard admitted, !closing.withLockedValue({ $0 }) else {
            if admitted { open.withLockedValue { _ = $0.removeValue(forKey: id) } }
            refused.increment()
            return false
        }
        openGauge.set(to: Double(openConnections))
        channel.closeFuture.whenComplete { [self] _ in
            open.withLockedValue { _ = $0.removeValue(forKey: id) }
            openGauge.set(to: Double(openConnections))
        }
        return true
    }

    /// The handlers of one connection: one on its bytes (first in the pipeline), one on its HTTP/1 parts (before the
    /// conversion to HTTP types), sharing its state.
    func install(on channel: any Channel) throws {
        let state = ConnectionState(channel: channel, connections: self)
        try channel.pipeline.syncOperations.addHandler(ByteWatch(state: state), position: .first)
        let codec = try channel.pipeline.syncOperations.handler(type: HTTP1ToHTTPServerCodec.self)
        try channel.pipeline.syncOperations.addHandler(RequestGate(state: state), position: .before(codec))
    }
}

/// One connection's requests and its timer; touched on its event loop only. Requests may be pipelined: those read
/// but not yet answered wait in order, each with what its answer must do to the connection.
final class ConnectionState: @unchecked Sendable {
    /// A request read (its head at least) and not yet answered.
    struct Request {
        /// Close the connection after its answer (HTTP/1.0, `Connection: close`, answered before its body came,
        /// shutdown).
        var close: Bool
        /// HTTP/1.0 with `Connection: keep-alive`: its answer says keep-alive.
        var keepAliveOneZero: Bool
        /// Its body has come whole.
        var ended = false
    }

    enum Phase {
        /// No request under way: `fresh` before the first one (the head timeout applies), else between requests.
        case idle(fresh: Bool)
        /// Bytes of a request came, its head not yet whole.
        case head
        /// A head came; its body is coming.
        case body
        /// Every request read is whole; answers are being made.
        case running
    }

    let channel: any Channel
    let connections: ConnectionGuard
    var requests: [Request] = []
    /// Bytes of a new request came since the last head.
    var headStarted = false
    var answered = 0
    /// The connection is closing (a refused request, an answer that closes): what comes in is dropped.
    var dropping = false
    private var timer: Scheduled<Void>?

    init(channel: any Channel, connections: ConnectionGuard) {
        self.channel = channel
        self.connections = connections
    }

    var phase: Phase {
        if let last = requests.last, !last.ended { return .body }
        if !requests.isEmpty { return .running }
        return headStarted ? .head : .idle(fresh: answered == 0)
    }

    /// When a body's bytes last came: the body's timer, when it fires, waits on from there if they came since (so that
    /// a read costs no timer of its own).
    var lastProgress = NIODeadline.now()

    /// Starts the timer that fits the phase (none while answers are made).
    func arm() {
        timer?.cancel()
        timer = nil
        let limits = connections.limits
        let (limit, counter): (Duration, Counter)
        switch phase {
        case .idle(fresh: true), .head: (limit, counter) = (limits.header, connections.timeouts.head)
        case .idle(fresh: false): (limit, counter) = (limits.keepAlive, connections.timeouts.idle)
        case .body:
            lastProgress = .now()
            (limit, counter) = (limits.body, connections.timeouts.body)
        case .running: return
        }
        schedule(after: TimeAmount(limit), limit: TimeAmount(limit), counter)
    }

    private func schedule(after delay: TimeAmount, limit: TimeAmount, _ counter: Counter) {
        timer = channel.eventLoop.scheduleTask(in: delay) { [self] in
            if case .body = phase, case let quiet = NIODeadline.now() - lastProgress, quiet < limit {
                schedule(after: limit - quiet, limit: limit, counter)  // the body moved since: wait from its last bytes
                return
            }
            counter.increment()
            channel.close(promise: nil)
        }
    }

    func disarm() {
        timer?.cancel()
        timer = nil
    }

    /// Shutdown has begun: a connection not inside a running request closes now, the others after their answers.
    func quiesce() {
        if case .running = phase { requests[requests.count - 1].close = true } else { channel.close(promise: nil) }
    }
}

/// The connection's bytes: a request's first byte starts the head's clock, body bytes restart the body's; shutdown's
/// quiesce event closes what is not running.
final class ByteWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let state: ConnectionState

    init(state: ConnectionState) { self.state = state }

    func handlerAdded(context: ChannelHandlerContext) { state.arm() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state.phase {
        case .idle:
            state.headStarted = true
            state.arm()
        case .body:
            state.lastProgress = .now()  // progress: the body's timer waits from here
        case .running:
            state.headStarted = true  // a pipelined request's head (its clock starts with the answers)
        case .head:
            break
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { state.quiesce() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.disarm()
        context.fireChannelInactive()
    }
}

/// The connection's HTTP/1 parts, before Hummingbird sees them: the head's checks (payload limit, `Expect`, HTTP/1.0)
/// and the answers' connection rules.
final class RequestGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    let state: ConnectionState

    init(state: ConnectionState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !state.dropping else { return }
        switch unwrapInboundIn(data) {
        case .head(var head):
            state.headStarted = false
            let limit = state.connections.limits.payloadLimit
            if let length = head.headers.first(name: "content-length").flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }), length > limit {
                if state.requests.isEmpty {
                    refuse(context, version: head.version, limit: limit)
                } else {  // behind pipelined requests: they are answered, then the connection closes
                    state.requests[state.requests.count - 1].close = true
                    state.dropping = true
                }
                return
            }
            state.requests.append(.init(close: !head.isKeepAlive, keepAliveOneZero: head.version == .http1_0 && head.isKeepAlive))
            if head.version == .http1_0 && !head.isKeepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
            state.arm()
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                head.headers.remove(name: "expect")
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            context.fireChannelRead(wrapInboundOut(.head(head)))
        case .body(let bytes):
            context.fireChannelRead(wrapInboundOut(.body(bytes)))
        case .end(let trailers):
            if !state.requests.isEmpty { state.requests[state.requests.count - 1].ended = true }
            state.arm()
            context.fireChannelRead(wrapInboundOut(.end(trailers)))
        }
    }

    /// 413 from the head, without reading the body; then the connection closes.
    private func refuse(_ context: ChannelHandlerContext, version: HTTPVersion, limit: Int) {
        state.dropping = true
        state.disarm()
        let body = ByteBuffer(bytes: Server.jsonData(APIError.payloadTooLarge(limit: limit)))
        var headers = HTTPHeaders([("content-type", "application/json"), ("connection", "close")])
        headers.add(name: "content-length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .payloadTooLarge, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !state.requests.isEmpty else {  // our own 413, or an answer with no request (an error Hummingbird writes)
            context.write(data, promise: promise)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(var head):
            guard head.status.code >= 200 else { break }  // an informational answer
            if !state.requests[0].ended { state.requests[0].close = true }  // answered before its body came: do not read it
            if state.requests[0].close {
                head.headers.replaceOrAdd(name: "connection", value: "close")
            } else if state.requests[0].keepAliveOneZero {
                head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
            return
        case .end:
            let request = state.requests.removeFirst()
            state.answered += 1
            if request.close {
                state.dropping = true  // anything more the client sends is dropped
                state.disarm()
                context.writeAndFlush(data).whenComplete { _ in context.close(promise: nil) }
                promise?.succeed()
                return
            }
            state.arm()
        case .body:
            break
        }
        context.write(data, promise: promise)
    }
}

/// Hummingbird's HTTP/1 channel with `ConnectionGuard`'s handlers and its connection cap.
struct GuardedHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let connections: ConnectionGuard

    var responder: Responder { inner.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            if connections.admit(channel) {
                try connections.install(on: channel)
            } else {
                channel.close(promise: nil)
            }
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with `connections`' limits on every connection.
    static func guarded(_ connections: ConnectionGuard, configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(inner: HTTP1Channel(responder: responder, configuration: configuration), connections: connections)
        }
    }
}
