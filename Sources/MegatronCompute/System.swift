#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Facts about the machine the model runs on.
public enum System {
    /// Online CPU cores.
    public static var cores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

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
