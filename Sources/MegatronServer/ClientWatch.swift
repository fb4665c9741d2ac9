import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// Which clients went away: a connection whose client closed its side (or the whole connection) while its request
/// waited. The server allows half-closed connections, so a client's FIN does not close the channel; `ClientWatch`'s
/// handler, one per connection in the HTTP pipeline, notes it, and the batch queue drops such a request instead of
/// running it (as hyper, under TEI, drops a request whose client closed).
///
/// ```swift
/// let watch = ClientWatch()
/// let app = Application(router: router, server: .http1(configuration: .init(additionalChannelHandlers: [watch.handler()])))
/// // in a route: let left = watch.hasLeft(context.channel)
/// ```
final class ClientWatch: @unchecked Sendable {
    private let lock = NSLock()
    /// Channels whose client closed its side; removed when the channel closes (then `isActive` says it).
    private var departed = Set<ObjectIdentifier>()

    /// Whether the client of `channel` went away.
    func hasLeft(_ channel: any Channel) -> Bool {
        if !channel.isActive { return true }
        lock.lock()
        defer { lock.unlock() }
        return departed.contains(ObjectIdentifier(channel))
    }

    /// A handler for one connection's pipeline.
    func handler() -> Handler { Handler(watch: self) }

    fileprivate func mark(_ channel: any Channel, departed gone: Bool) {
        lock.lock()
        if gone { departed.insert(ObjectIdentifier(channel)) } else { departed.remove(ObjectIdentifier(channel)) }
        lock.unlock()
    }

    /// Passes every part on, and notes the end of the client's side of the connection.
    final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        private let watch: ClientWatch

        init(watch: ClientWatch) { self.watch = watch }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed? = event as? ChannelEvent { watch.mark(context.channel, departed: true) }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            watch.mark(context.channel, departed: false)
            context.fireChannelInactive()
        }
    }
}

/// The request context of the server's routes: Hummingbird's, the connection (to see whether its client left), and
/// the request's record, which its middleware and handler share.
struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel
    let record = RequestRecord()

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
