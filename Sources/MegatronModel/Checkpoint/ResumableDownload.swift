import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP GET of a large file into `<destination>.part`, resuming what an earlier try left there, renamed to
/// `destination` when complete. Careful about what it trusts:
/// - only a 2xx body is ever written (an error page never lands in the file);
/// - a resumed reply must be `206` with a `Content-Range` starting where the file ends, else it starts over;
/// - a reply without a length (chunked, or ended by closing) is complete when the server ends it cleanly;
/// - at most `maxRedirects` redirects; an overall `deadline`; and a server trickling slower than
///   `minimumBytesPerSecond` over `slowWindow` seconds is dropped (the next run resumes).
///
/// ```swift
/// try ResumableDownload(url: "https://…/zip", destination: "/cache/model.zip").run { done, total in print(done) }
/// ```
struct ResumableDownload {
    var url: String
    var destination: String
    /// Seconds without any answer before giving up.
    var idleTimeout: TimeInterval = 30
    /// Seconds the whole download may take.
    var deadline: TimeInterval = 6 * 3600
    var minimumBytesPerSecond = 1024
    var slowWindow: TimeInterval = 60
    var maxRedirects = 10

    /// What went wrong, for the caller to phrase.
    enum Failure: Error, CustomStringConvertible {
        case http(status: Int)
        case transport(String)
        case incomplete(written: Int64, expected: Int64?)
        case tooSlow(bytesPerSecond: Double)
        case deadline(TimeInterval)
        case tooManyRedirects(Int)
        case badRange(String)
        case file(String)

        var description: String {
            switch self {
            case .http(let status): "the server answered HTTP \(status) \(HTTPURLResponse.localizedString(forStatusCode: status))"
            case .transport(let reason): reason
            case .incomplete(let written, let expected):
                "the transfer stopped after \(written) bytes (expected \(expected.map(String.init) ?? "more"))"
            case .tooSlow(let rate): String(format: "the server sent only %.0f bytes/s", rate)
            case .deadline(let seconds): "the download did not finish within \(Int(seconds)) s"
            case .tooManyRedirects(let n): "more than \(n) redirects"
            case .badRange(let header): "the server resumed at the wrong place (Content-Range: \(header))"
            case .file(let reason): reason
            }
        }
    }

    /// Downloads, resuming `<destination>.part`; after a reply that cannot be resumed it starts over once.
    func run(progress: @escaping @Sendable (Int64, Int64?) -> Void) throws {
        do {
            try attempt(progress: progress)
        } catch Failure.badRange {
            try? FileManager.default.removeItem(atPath: destination + ".part")
            try attempt(progress: progress)
        }
    }

    private func attempt(progress: @escaping @Sendable (Int64, Int64?) -> Void) throws {
        let part = destination + ".part"
        let fm = FileManager.default
        let already = (try? fm.attributesOfItem(atPath: part)[.size] as? Int64) ?? 0
        if !fm.fileExists(atPath: part) { _ = fm.createFile(atPath: part, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: part) else { throw Failure.file("cannot write \(part)") }
        defer { try? handle.close() }
        guard let target = URL(string: url) else { throw Failure.file("the URL \(url) is invalid") }
        var request = URLRequest(url: target)
        if already > 0 { request.setValue("bytes=\(already)-", forHTTPHeaderField: "Range") }
        let receiver = Receiver(handle: handle, offset: already, rule: self, progress: progress)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = idleTimeout
        let session = URLSession(configuration: configuration, delegate: receiver, delegateQueue: nil)
        let task = session.dataTask(with: request)
        task.resume()
        if receiver.finished.wait(timeout: .now() + deadline) == .timedOut {
            receiver.fail(.deadline(deadline))
            task.cancel()
            _ = receiver.finished.wait(timeout: .now() + 10)
        }
        session.finishTasksAndInvalidate()
        if let failure = receiver.failure { throw failure }
        if let expected = receiver.expectedTotal, receiver.written != expected {
            throw Failure.incomplete(written: receiver.written, expected: expected)
        }
        guard receiver.accepted else { throw Failure.incomplete(written: receiver.written, expected: receiver.expectedTotal) }
        try? fm.removeItem(atPath: destination)
        do { try fm.moveItem(atPath: part, toPath: destination) } catch { throw Failure.file("cannot move \(part) to \(destination): \(error.localizedDescription)") }
    }

    /// The delegate: checks the reply, then appends its body to the file.
    final class Receiver: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let handle: FileHandle
        let rule: ResumableDownload
        let progress: @Sendable (Int64, Int64?) -> Void
        let finished = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private(set) var written: Int64
        private let resumedFrom: Int64
        private(set) var expectedTotal: Int64?
        private(set) var failure: Failure?
        /// Set once a 2xx reply was checked; no byte is written before.
        private(set) var accepted = false
        private var redirects = 0
        private var windowStart = Date()
        private var windowBytes = 0

        init(handle: FileHandle, offset: Int64, rule: ResumableDownload, progress: @escaping @Sendable (Int64, Int64?) -> Void) {
            self.handle = handle
            written = offset
            resumedFrom = offset
            self.rule = rule
            self.progress = progress
        }

        func fail(_ failure: Failure) {
            lock.lock()
            if self.failure == nil { self.failure = failure }
            lock.unlock()
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            redirects += 1
            guard redirects <= rule.maxRedirects else {
                fail(.tooManyRedirects(rule.maxRedirects))
                completionHandler(nil)
                task.cancel()
                return
            }
            completionHandler(request)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            let http = response as? HTTPURLResponse
            let status = http?.statusCode ?? 200
            let length = response.expectedContentLength >= 0 ? response.expectedContentLength : nil
            switch status {
            case 206 where resumedFrom > 0:
                // "bytes START-END/TOTAL" must start where the file ends.
                let header = http?.value(forHTTPHeaderField: "Content-Range") ?? ""
                let numbers = header.split(whereSeparator: { !$0.isNumber }).compactMap { Int64($0) }
                guard header.hasPrefix("bytes "), numbers.count >= 2, numbers[0] == resumedFrom else {
                    fail(.badRange(header.isEmpty ? "missing" : header))
                    completionHandler(.cancel)
                    return
                }
                handle.seekToEndOfFile()
                expectedTotal = numbers.count >= 3 ? numbers[2] : length.map { $0 + resumedFrom }
            case 200...299:
                // The whole file from the start (a server that ignores Range answers 200): start over.
                handle.truncateFile(atOffset: 0)
                written = 0
                expectedTotal = length
            default:
                fail(.http(status: status))
                completionHandler(.cancel)
                return
            }
            accepted = true
            windowStart = Date()
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard accepted, failure == nil else { return }
            do {
                try handle.write(contentsOf: data)
            } catch {
                fail(.file("cannot write the download: \(error.localizedDescription)"))
                dataTask.cancel()
                return
            }
            written += Int64(data.count)
            progress(written, expectedTotal)
            windowBytes += data.count
            let elapsed = Date().timeIntervalSince(windowStart)
            if elapsed >= rule.slowWindow {
                let rate = Double(windowBytes) / elapsed
                if rate < Double(rule.minimumBytesPerSecond) {
                    fail(.tooSlow(bytesPerSecond: rate))
                    dataTask.cancel()
                }
                windowStart = Date()
                windowBytes = 0
            }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            if let error { fail(.transport((error as NSError).code == NSURLErrorTimedOut ? "no answer within \(Int(rule.idleTimeout)) s" : error.localizedDescription)) }
            finished.signal()
        }
    }
}
