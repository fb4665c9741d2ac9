#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Facts about the machine the model runs on.
public enum System {
    /// Online CPU cores.
    public static var cores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// The threads the CPU backend splits its work across: `MEGATRON_BERT_THREADS` when set (1 to 1,024), else
    /// `cores`. Read once, when the first split runs.
    ///
    /// ```swift
    /// let threads = try System.threads(Settings(environment: ["MEGATRON_BERT_THREADS": "4"]))  // 4
    /// ```
    public static func threads(_ settings: Settings = .current) throws -> Int {
        guard let text = settings[.threads] else { return cores }
        guard let count = Int(text), (1...1024).contains(count) else {
            throw BackendError("MEGATRON_BERT_THREADS=\(text) is not a thread count: use a number from 1 to 1024 (or leave it unset for every core, \(cores) here)")
        }
        return count
    }

    /// `transform` of every index 0..<count, computed on every core in contiguous parts through Dispatch — for work
    /// beside a backend's own splits (tokenizing, copying and pooling rows, formatting output lines) — or on the
    /// calling thread when there are fewer than two parts of `minimumPerPart`.
    ///
    /// ```swift
    /// let squares = System.concurrentMap(1_000, minimumPerPart: 100) { $0 * $0 }  // [0, 1, 4, …]
    /// ```
    public static func concurrentMap<T>(_ count: Int, minimumPerPart: Int = 1, _ transform: (Int) -> T) -> [T] {
        let parts = min(cores, max(1, count / max(minimumPerPart, 1)))
        return [T](unsafeUninitializedCapacity: count) { out, initialized in
            let out = out
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                for i in count * part / parts..<count * (part + 1) / parts { (out.baseAddress! + i).initialize(to: transform(i)) }
            }
            initialized = count
        }
    }

    /// The process's peak resident memory so far, in bytes: `VmHWM` of /proc/self/status, the high-water mark
    /// of this program's own memory (getrusage's figure also counts the parent's memory at the moment it started
    /// this process, when that parent used vfork, as posix_spawn does).
    public static var peakResidentBytes: Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") {
            return kilobytes * 1024
        }
        #if canImport(Glibc)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
        #else
        return 0
        #endif
    }
}
