import BERTTokenizer
import Foundation
import TensorFiles
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Fetches NVIDIA's public Megatron-BERT 345M checkpoint (an NGC zip) into a cache, resuming a partial
/// download, and converts it to a Hugging Face directory there.
///
/// ```swift
/// let download = ModelDownload(variant: .cased)
/// let directory = try download.run { done, total in print(done, total ?? 0) }
/// let model = try MegatronBERTModel(path: directory)
/// ```
public struct ModelDownload: Sendable {
    public enum Variant: String, Sendable, CaseIterable {
        case cased, uncased
        /// The NGC version name.
        var version: String { "v0.1_\(rawValue)" }
    }

    /// NGC's model API; a file is at `<base>/<version>/zip` (overridable to test against a local server).
    public static let defaultBaseURL = "https://api.ngc.nvidia.com/v2/models/nvidia/megatron_bert_345m/versions"

    public var variant: Variant
    public var baseURL: String
    /// `~/.cache/megatron-bert` unless `MEGATRON_BERT_CACHE` or the caller says otherwise.
    public var cacheDirectory: String
    /// Seconds without an answer before giving up.
    public var timeout: TimeInterval = 30
    /// Attention heads, for a checkpoint without args; nil: hidden size / 64 (16 for NGC's 345M models).
    public var heads: Int?

    public init(variant: Variant, baseURL: String = ModelDownload.defaultBaseURL, cacheDirectory: String? = nil) {
        self.variant = variant
        self.baseURL = baseURL
        self.cacheDirectory = cacheDirectory ?? ProcessInfo.processInfo.environment["MEGATRON_BERT_CACHE"]
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/megatron-bert")
    }

    public var url: String { baseURL + "/" + variant.version + "/zip" }
    /// Where the zip lands in the cache.
    public var zipPath: String { (cacheDirectory as NSString).appendingPathComponent("megatron_bert_345m_\(variant.version).zip") }
    /// Where the converted Hugging Face directory goes.
    public var modelDirectory: String { (cacheDirectory as NSString).appendingPathComponent("megatron-bert-\(variant.rawValue)-345m") }

    /// What to do by hand when the download cannot happen.
    public var manualSteps: String {
        """
        download it yourself and convert it:
          1. fetch \(url) (e.g. `wget -O megatron.zip '\(url)'`) on a machine with network access
          2. megatron-bert convert megatron.zip --output \(modelDirectory) --vocab \(variant == .cased ? "vocab/megatron-bert-cased-vocab.txt" : "YOUR-UNCASED-vocab.txt")
        """
    }

    /// Downloads (resuming `<zip>.part` if present) unless the zip is cached, then converts it into
    /// `modelDirectory` unless that exists. Returns `modelDirectory`. The tokenizer lowercases for the uncased
    /// variant; a `vocabulary` of the other casing is refused before anything is fetched.
    public func run(vocabulary: String? = nil, progress: @escaping @Sendable (Int64, Int64?) -> Void = { _, _ in }) throws -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: (modelDirectory as NSString).appendingPathComponent("model.safetensors")) { return modelDirectory }
        if let vocabulary { try checkCasing(of: vocabulary) }
        try fm.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        if !fm.fileExists(atPath: zipPath) { try fetch(progress: progress) }
        let converted: MegatronConversion.Result
        do {
            converted = try MegatronConversion.load(path: zipPath, heads: heads)
        } catch {
            try? fm.removeItem(atPath: zipPath)  // a corrupt download must not stay cached
            throw ModelError("the downloaded file is not a usable checkpoint (\(error)); it was removed, run again to fetch it anew")
        }
        try converted.write(to: modelDirectory, vocabulary: vocabulary,
                            stated: .stated(lowercase: variant == .uncased, by: "the \(variant) download"))
        return modelDirectory
    }

    /// Throws unless `vocabulary` is a vocab.txt of this variant's casing (upper-case pieces for cased, none for uncased).
    func checkCasing(of vocabulary: String) throws {
        let vocab: Vocabulary
        do { vocab = try Vocabulary(path: vocabulary) } catch let error as TokenizerError { throw ModelError("--vocab: \(error.message)") }
        guard vocab.hasUppercasePieces == (variant == .cased) else {
            throw ModelError(variant == .uncased
                ? "the uncased model needs NVIDIA's uncased vocabulary (BERT-large-uncased's vocab.txt, 30522 tokens), but \(vocabulary) has upper-case pieces: it is a cased vocabulary"
                : "the cased model needs the cased vocabulary (vocab/megatron-bert-cased-vocab.txt), but \(vocabulary) has no upper-case pieces: it is an uncased vocabulary")
        }
    }

    /// HTTP GET into `<zip>.part` (with `Range` when part of it is there), renamed to the zip when complete.
    func fetch(progress: @escaping @Sendable (Int64, Int64?) -> Void) throws {
        let part = zipPath + ".part"
        let fm = FileManager.default
        let already = (try? fm.attributesOfItem(atPath: part)[.size] as? Int64) ?? 0
        if !fm.fileExists(atPath: part) { fm.createFile(atPath: part, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: part), let target = URL(string: url) else {
            throw ModelError("cannot write \(part) (or the URL \(url) is invalid)")
        }
        defer { try? handle.close() }
        var request = URLRequest(url: target)
        if already > 0 { request.setValue("bytes=\(already)-", forHTTPHeaderField: "Range") }
        let receiver = Receiver(handle: handle, offset: already, progress: progress)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        let session = URLSession(configuration: configuration, delegate: receiver, delegateQueue: nil)
        session.dataTask(with: request).resume()
        receiver.finished.wait()
        session.finishTasksAndInvalidate()
        if let error = receiver.error {
            throw ModelError("downloading \(url) failed: \(error.localizedDescription). Offline? Then \(manualSteps)")
        }
        guard let expected = receiver.expectedTotal, receiver.written == expected else {
            throw ModelError("downloading \(url) stopped after \(receiver.written) bytes (expected \(receiver.expectedTotal.map(String.init) ?? "?")); run again to resume")
        }
        try fm.moveItem(atPath: part, toPath: zipPath)
    }

    /// Writes the response body as it arrives; knows the total from Content-Length / Content-Range.
    final class Receiver: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let handle: FileHandle
        let progress: @Sendable (Int64, Int64?) -> Void
        let finished = DispatchSemaphore(value: 0)
        var written: Int64
        var expectedTotal: Int64?
        var error: Error?

        init(handle: FileHandle, offset: Int64, progress: @escaping @Sendable (Int64, Int64?) -> Void) {
            self.handle = handle
            written = offset
            self.progress = progress
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            let http = response as? HTTPURLResponse
            let length = response.expectedContentLength >= 0 ? response.expectedContentLength : nil
            switch http?.statusCode ?? 200 {
            case 206:  // resuming: keep what we have
                handle.seekToEndOfFile()
                expectedTotal = length.map { $0 + written }
            case 200:  // the server sent everything: start over
                handle.truncateFile(atOffset: 0)
                written = 0
                expectedTotal = length
            default:
                error = ModelError("the server answered HTTP \(http?.statusCode ?? 0)")
                completionHandler(.cancel)
                return
            }
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            handle.write(data)
            written += Int64(data.count)
            progress(written, expectedTotal)
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            if self.error == nil, let error { self.error = error }
            finished.signal()
        }
    }
}
