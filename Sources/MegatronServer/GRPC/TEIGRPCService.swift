import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle

/// The gRPC server beside the HTTP one (`--grpc-port`): TEI's services over HTTP/2 in plain text, the same batch
/// queue. At SIGTERM it stops taking calls and lets those running finish for the graceful-shutdown deadline, then
/// ends the rest.
struct TEIGRPCService: Service {
    let server: Server
    let host: String
    let port: Int
    let deadline: Duration
    let onListening: @Sendable (String) -> Void

    func run() async throws {
        let address: GRPCNIOTransportCore.SocketAddress = host.contains(":") ? .ipv6(host: host, port: port)
            : .ipv4(host: host == "localhost" ? "127.0.0.1" : host, port: port)
        let grpc = GRPCServer(transport: .http2NIOPosix(address: address, transportSecurity: .plaintext),
                              services: TEIServices(server: server).all, interceptors: TEIServices.interceptors(apiKey: server.options.apiKey))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withGracefulShutdownHandler {
                    try await grpc.serve()
                } onGracefulShutdown: {
                    grpc.beginGracefulShutdown()
                }
            }
            group.addTask {
                if let bound = try await grpc.listeningAddress {
                    onListening(bound.ipv4.map { "\($0.host):\($0.port)" } ?? bound.ipv6.map { "[\($0.host)]:\($0.port)" } ?? "\(bound)")
                }
                try await gracefulShutdown()
                try await Task.sleep(for: deadline + .milliseconds(500))  // past the deadline: the calls still running are ended
            }
            _ = try await group.next()  // the server ended (its calls done), or the deadline passed
            group.cancelAll()
        }
    }
}
