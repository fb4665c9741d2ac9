import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel
#if canImport(Glibc)
import Glibc
import TestSupport
#endif

/// A one-file HTTP/1.1 server on 127.0.0.1 for the download tests: honours `Range: bytes=N-`, and can
/// close the first response after `cutAfter` bytes to stand for a dropped connection. Bounded: it stops
/// after `maxRequests` requests or when the test ends.
final class LocalFileServer: @unchecked Sendable {
    /// How the server misbehaves, for the download's reliability tests.
    enum Mode: Sendable {
        case honest
        /// Every request gets HTTP 503 with an HTML body.
        case errorPage
        /// The body in chunked transfer encoding: no Content-Length.
        case chunked
        /// No Content-Length; the body ends when the connection closes.
        case closeDelimited
        /// One byte every `interval` seconds.
        case trickle(interval: Double)
        /// A redirect to itself, forever.
        case redirectLoop
        /// Answers a Range request with 206 from the wrong offset.
        case wrongRange
    }

    let body: [UInt8]
    let path: String
    let cutAfter: Int?
    let mode: Mode
    private(set) var port: UInt16 = 0
    private var listener: Int32 = -1
    private(set) var ranges: [String] = []
    private let lock = NSLock()

    init(body: [UInt8], path: String, cutAfter: Int? = nil, maxRequests: Int = 4, mode: Mode = .honest) throws {
        self.body = body
        self.path = path
        self.cutAfter = cutAfter
        self.mode = mode
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        guard bound == 0, listen(listener, 4) == 0 else { throw ModelError("test server: cannot listen") }
        withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listener, $0, &length) } }
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in
            for request in 0..<maxRequests {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                serve(client, first: request == 0)
                close(client)
            }
        }
        thread.start()
    }

    deinit { close(listener) }

    var url: String { "http://127.0.0.1:\(port)" }

    private func serve(_ client: Int32, first: Bool) {
        var request = [UInt8](repeating: 0, count: 4096)
        let n = recv(client, &request, request.count, 0)
        guard n > 0 else { return }
        let text = String(decoding: request[0..<n], as: UTF8.self)
        let target = text.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        var start = 0
        if let line = text.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("range: bytes=") }) {
            start = Int(line.dropFirst("range: bytes=".count).split(separator: "-").first ?? "0") ?? 0
            lock.lock(); ranges.append(String(line)); lock.unlock()
        }
        guard target == path else {
            write(client, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        }
        switch mode {
        case .errorPage:
            let page = "<html><body>Service Unavailable</body></html>"
            write(client, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nContent-Length: \(page.utf8.count)\r\nConnection: close\r\n\r\n" + page)
            return
        case .redirectLoop:
            write(client, "HTTP/1.1 302 Found\r\nLocation: \(path)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        case .chunked:
            write(client, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            for chunk in stride(from: 0, to: body.count, by: 4096).map({ Array(body[$0..<min($0 + 4096, body.count)]) }) {
                write(client, String(chunk.count, radix: 16) + "\r\n")
                _ = chunk.withUnsafeBytes { Glibc.send(client, $0.baseAddress, chunk.count, 0) }
                write(client, "\r\n")
            }
            write(client, "0\r\n\r\n")
            return
        case .closeDelimited:
            write(client, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            _ = body.withUnsafeBytes { Glibc.send(client, $0.baseAddress, body.count, 0) }
            return
        case .trickle(let interval):
            write(client, "HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n")
            for byte in body {
                guard [byte].withUnsafeBytes({ Glibc.send(client, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }) == 1 else { return }
                Thread.sleep(forTimeInterval: interval)
            }
            return
        case .honest, .wrongRange:
            break
        }
        let from = { if case .wrongRange = self.mode, start > 0 { return start / 2 } else { return start } }()
        let slice = Array(body[min(from, body.count)...])
        let status = start > 0 ? "206 Partial Content" : "200 OK"
        var head = "HTTP/1.1 \(status)\r\nContent-Length: \(slice.count)\r\nConnection: close\r\n"
        if start > 0 { head += "Content-Range: bytes \(from)-\(body.count - 1)/\(body.count)\r\n" }
        head += "\r\n"
        write(client, head)
        let count = first && cutAfter != nil ? min(cutAfter!, slice.count) : slice.count
        _ = slice.withUnsafeBytes { Glibc.send(client, $0.baseAddress, count, Int32(MSG_NOSIGNAL)) }
    }

    private func write(_ client: Int32, _ text: String) {
        _ = text.withCString { Glibc.send(client, $0, strlen($0), 0) }
    }
}

@Suite(.serialized) struct ModelDownloadTests {
    static func cache() -> String {
        Scratch.path("download")
    }

    static let zip = try! [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.root + "/megatron/ngc.zip")))

    @Test func downloadsConvertsAndCaches() throws {
        let server = try LocalFileServer(body: Self.zip, path: "/versions/v0.1_cased/zip")
        let download = ModelDownload(variant: .cased, baseURL: server.url + "/versions", cacheDirectory: Self.cache())
        let directory = try download.run()
        let model = try MegatronBERTModel(path: directory)
        expectOutputs(try model.forward(try Fixtures.batch()), match: try Fixtures.expected("megatron-ForPreTraining"),
                      tolerance: 1e-4)
        // Cached: a second run needs no server.
        let offline = ModelDownload(variant: .cased, baseURL: "http://127.0.0.1:9/none", cacheDirectory: download.cacheDirectory)
        #expect(try offline.run() == directory)
    }

    @Test func resumesAnInterruptedDownload() throws {
        let cut = Self.zip.count / 3
        let server = try LocalFileServer(body: Self.zip, path: "/versions/v0.1_cased/zip", cutAfter: cut)
        let download = ModelDownload(variant: .cased, baseURL: server.url + "/versions", cacheDirectory: Self.cache())
        #expect(throws: ModelError.self) { try download.run() }  // the connection dropped
        let partial = try FileManager.default.attributesOfItem(atPath: download.zipPath + ".part")[.size] as? Int
        #expect(partial == cut)
        _ = try download.run()  // resumes with a Range request
        #expect(server.ranges == ["Range: bytes=\(cut)-"])
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: download.zipPath))) == Self.zip)
    }

    @Test func offlineFailsAtOnceWithTheManualSteps() throws {
        let download = ModelDownload(variant: .uncased, baseURL: "http://127.0.0.1:9/versions", cacheDirectory: Self.cache())
        let started = Date()
        do {
            _ = try download.run()
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("megatron-bert convert"), "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }

    /// The uncased download lowercases although NGC's zip has no args to say so; a cased vocabulary for it is
    /// refused before anything is fetched.
    @Test func theUncasedDownloadLowercases() throws {
        let zip = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.root + "/megatron/ngc-uncased.zip")))
        let server = try LocalFileServer(body: zip, path: "/versions/v0.1_uncased/zip")
        var download = ModelDownload(variant: .uncased, baseURL: server.url + "/versions", cacheDirectory: Self.cache())
        download.heads = 2
        let directory = try download.run()
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/tokenizer_config.json"))) as? [String: Any]
        #expect(config?["do_lower_case"] as? Bool == true)

        let offline = ModelDownload(variant: .uncased, baseURL: "http://127.0.0.1:9/versions", cacheDirectory: Self.cache())
        #expect {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            return try offline.run(vocabulary: root.path + "/vocab/megatron-bert-cased-vocab.txt")
        } throws: { "\($0)".contains("it is a cased vocabulary") }
    }

    /// An error page is never written into the resume file, and the status is in the message.
    @Test func anErrorPageIsNotKept() throws {
        let server = try LocalFileServer(body: Self.zip, path: "/versions/v0.1_cased/zip", mode: .errorPage)
        let download = ModelDownload(variant: .cased, baseURL: server.url + "/versions", cacheDirectory: Self.cache())
        #expect { try download.run() } throws: { "\($0)".contains("HTTP 503") }
        let kept = (try? FileManager.default.attributesOfItem(atPath: download.zipPath + ".part")[.size] as? Int) ?? 0
        #expect(kept == 0)
    }

    /// Replies without a length (chunked, or ended by closing the connection) complete.
    @Test(arguments: [LocalFileServer.Mode.chunked, .closeDelimited])
    func repliesWithoutALengthComplete(mode: LocalFileServer.Mode) throws {
        let server = try LocalFileServer(body: Self.zip, path: "/versions/v0.1_cased/zip", mode: mode)
        let download = ModelDownload(variant: .cased, baseURL: server.url + "/versions", cacheDirectory: Self.cache())
        _ = try download.run()
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: download.zipPath))) == Self.zip)
    }

    /// A server that trickles is dropped once it is slower than the floor over the window; a redirect loop ends.
    @Test func aTricklingServerAndARedirectLoopEnd() throws {
        let slow = try LocalFileServer(body: Self.zip, path: "/versions/v0.1_cased/zip", mode: .trickle(interval: 0.2))
        var download = ModelDownload(variant: .cased, baseURL: slow.url + "/versions", cacheDirectory: Self.cache())
        download.slowWindow = 1
        download.minimumBytesPerSecond = 100
        let started = Date()
        #expect { try download.run() } throws: { "\($0)".contains("bytes/s") }
        #expect(Date().timeIntervalSince(started) < 20)
        let loop = try LocalFileServer(body: Self.zip, path: "/versions/v0.1_cased/zip", maxRequests: 30, mode: .redirectLoop)
        let looping = ModelDownload(variant: .cased, baseURL: loop.url + "/versions", cacheDirectory: Self.cache())
        #expect(throws: ModelError.self) { try looping.run() }
    }

    /// A resumed reply from the wrong offset is thrown away and the download starts over.
    @Test func aWrongRangeStartsOver() throws {
        let cut = Self.zip.count / 3
        let server = try LocalFileServer(body: Self.zip, path: "/versions/v0.1_cased/zip", cutAfter: cut, mode: .wrongRange)
        let download = ModelDownload(variant: .cased, baseURL: server.url + "/versions", cacheDirectory: Self.cache())
        #expect(throws: ModelError.self) { try download.run() }  // the connection dropped
        _ = try download.run()  // resumes, gets the wrong range, starts over
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: download.zipPath))) == Self.zip)
    }

    @Test func aCorruptDownloadIsNotKept() throws {
        var broken = Self.zip
        for i in stride(from: 100, to: broken.count - 200, by: 50) { broken[i] ^= 0xff }
        let server = try LocalFileServer(body: broken, path: "/versions/v0.1_cased/zip")
        let download = ModelDownload(variant: .cased, baseURL: server.url + "/versions", cacheDirectory: Self.cache())
        #expect(throws: ModelError.self) { try download.run() }
        #expect(!FileManager.default.fileExists(atPath: download.zipPath))
    }
}
