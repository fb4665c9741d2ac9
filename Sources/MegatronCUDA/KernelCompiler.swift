import Foundation

/// Compiles CUDA C with NVRTC for one GPU architecture and keeps the result on disk, keyed by the source, the
/// architecture and the NVRTC version (so a new kernel, GPU or NVRTC compiles afresh, and nothing else does).
///
/// ```swift
/// let image = try KernelCompiler().compile(CUDAKernelSource.source, architecture: 90)  // a cubin for sm_90
/// ```
public struct KernelCompiler {
    /// What was compiled: a cubin for the exact architecture, or PTX for the newest one NVRTC knows (which the
    /// driver finishes for a newer GPU).
    public struct Image {
        public let bytes: [UInt8]
        public let isPTX: Bool
        /// "sm_90" or "compute_90".
        public let target: String
        /// Whether it came from the disk cache.
        public let cached: Bool
    }

    /// Where compiled kernels are kept: `$MEGATRON_BERT_CACHE/cuda`, else `~/.cache/megatron-bert/cuda`.
    public let cacheDirectory: String?

    public init(cacheDirectory: String? = KernelCompiler.defaultCacheDirectory) {
        self.cacheDirectory = cacheDirectory
    }

    public static var defaultCacheDirectory: String {
        let root = Settings.current[.cache]
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/megatron-bert")
        return (root as NSString).appendingPathComponent("cuda")
    }

    /// NVRTC's version, e.g. "13.0" (throws when NVRTC cannot be loaded).
    public static func nvrtcVersion() throws -> String {
        let nvrtc = try NVRTC.shared.get()
        return "\(nvrtc.version.major).\(nvrtc.version.minor)"
    }

    /// Compiles `source` for compute capability `architecture` (e.g. 80 for sm_80).
    /// - Throws: `CUDAUnavailable` without NVRTC; `CUDAError` with NVRTC's log when the source does not compile.
    public func compile(_ source: String, architecture: Int) throws -> Image {
        let nvrtc = try NVRTC.shared.get()
        let supported = nvrtc.supportedArchitectures
        let exact = supported.isEmpty || supported.contains(architecture)
        guard exact || (supported.max() ?? 0) < architecture else {
            throw CUDAUnavailable("NVRTC \(nvrtc.version.major).\(nvrtc.version.minor) cannot compile for sm_\(architecture) (it knows \(supported.map { "sm_\($0)" }.joined(separator: ", "))); the GPU needs sm_70 or newer")
        }
        // A GPU newer than this NVRTC gets PTX for the newest architecture NVRTC knows; the driver compiles it on.
        let target = exact ? "sm_\(architecture)" : "compute_\(supported.max()!)"
        let key = Self.fingerprint(source + "\n" + target + "\n\(nvrtc.version.major).\(nvrtc.version.minor)")
        let file = cacheDirectory.map { ($0 as NSString).appendingPathComponent("kernels-\(key).\(exact ? "cubin" : "ptx")") }
        if let file, let data = FileManager.default.contents(atPath: file), !data.isEmpty {
            return Image(bytes: [UInt8](data), isPTX: !exact, target: target, cached: true)
        }
        var program: OpaquePointer?
        var status = source.withCString { nvrtc.createProgram(&program, $0, "megatron_bert_kernels.cu", 0, nil, nil) }
        guard status == 0 else { throw CUDAError("NVRTC could not create the program: \(nvrtc.message(status))") }
        defer { _ = nvrtc.destroyProgram(&program) }
        let options = ["--gpu-architecture=\(target)", "--std=c++17"]
        let cStrings = options.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        status = cStrings.map { UnsafePointer($0) }.withUnsafeBufferPointer {
            nvrtc.compileProgram(program, Int32(options.count), $0.baseAddress)
        }
        if status != 0 {
            var size = 0
            _ = nvrtc.getLogSize(program, &size)
            var log = [CChar](repeating: 0, count: max(size, 1))
            _ = nvrtc.getLog(program, &log)
            let text = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CUDAError("the GPU kernels did not compile for \(target) (\(nvrtc.message(status))):\n\(text)")
        }
        var size = 0
        _ = exact ? nvrtc.getCUBINSize(program, &size) : nvrtc.getPTXSize(program, &size)
        var bytes = [CChar](repeating: 0, count: max(size, 1))
        status = exact ? nvrtc.getCUBIN(program, &bytes) : nvrtc.getPTX(program, &bytes)
        guard status == 0, size > 0 else { throw CUDAError("NVRTC compiled the kernels but gave no image: \(nvrtc.message(status))") }
        let image = bytes.prefix(size).map { UInt8(bitPattern: $0) }
        if let file, let dir = cacheDirectory {
            // Written beside and renamed, so a concurrent reader never sees half a file; a cache that cannot be
            // written only costs a compile next time.
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let temporary = file + ".\(ProcessInfo.processInfo.processIdentifier).tmp"
            if FileManager.default.createFile(atPath: temporary, contents: Data(image)) {
                if rename(temporary, file) != 0 { unlink(temporary) }
            }
        }
        return Image(bytes: image, isPTX: !exact, target: target, cached: false)
    }

    /// A 64-bit FNV-1a of the text, as 16 hex digits.
    static func fingerprint(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return String(hash, radix: 16).leftPadded(to: 16)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
