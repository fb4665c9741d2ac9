import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore

/// Which clients went away: a connection that is closed (the client reset it, or an answer written to it failed).
/// A client that only half-closes — sends its request, then FIN, and goes on reading — is still there and gets its
/// answer, as TEI (hyper) answers it; so a FIN alone does not drop a request. The batch queue drops the request of a
/// client that went away instead of running it.
///
/// ```swift
/// let watch = ClientWatch()
/// // in a route: let left = watch.hasLeft(context.channel)
/// ```
struct ClientWatch: Sendable {
    /// Whether the client of `channel` went away.
    func hasLeft(_ channel: any Channel) -> Bool { !channel.isActive }
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
