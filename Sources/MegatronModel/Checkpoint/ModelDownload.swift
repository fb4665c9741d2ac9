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
    /// Which of NVIDIA's two public 345M checkpoints: cased (vocabulary of 28996 tokens) or uncased (30522).
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
    /// Seconds the whole download may take (the next run resumes where it stopped).
    public var deadline: TimeInterval = 6 * 3600
    /// Slower than this over `slowWindow` seconds, the server is dropped (the next run resumes).
    public var minimumBytesPerSecond = 1024
    public var slowWindow: TimeInterval = 60
    /// Attention heads, for a checkpoint without args; nil: hidden size / 64 (16 for NGC's 345M models).
    public var heads: Int?

    /// A download of `variant` from `baseURL` into `cacheDirectory` (default: $MEGATRON_BERT_CACHE, else
    /// ~/.cache/megatron-bert).
    public init(variant: Variant, baseURL: String = ModelDownload.defaultBaseURL, cacheDirectory: String? = nil) {
        self.variant = variant
        self.baseURL = baseURL
        self.cacheDirectory = cacheDirectory ?? Settings.current[.cache]
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/megatron-bert")
    }

    /// Where the zip is fetched from.
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
            throw ModelError(.resource, "the downloaded file is not a usable checkpoint (\(error)); it was removed, run again to fetch it anew")
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

    /// HTTP GET into `<zip>.part` (resuming it), renamed to the zip when complete (see `ResumableDownload`).
    func fetch(progress: @escaping @Sendable (Int64, Int64?) -> Void) throws {
        var download = ResumableDownload(url: url, destination: zipPath)
        download.idleTimeout = timeout
        download.deadline = deadline
        download.minimumBytesPerSecond = minimumBytesPerSecond
        download.slowWindow = slowWindow
        do {
            try download.run(progress: progress)
        } catch let failure as ResumableDownload.Failure {
            switch failure {
            case .transport, .http:
                throw ModelError(.resource, "downloading \(url) failed: \(failure). Offline? Then \(manualSteps)")
            default:
                throw ModelError(.resource, "downloading \(url) failed: \(failure); run again to resume")
            }
        }
    }
}
