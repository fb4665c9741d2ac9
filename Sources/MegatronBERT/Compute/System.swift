#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Facts about the machine the model runs on.
public enum System {
    /// Online CPU cores.
    public static var cores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// The process's peak resident memory so far, in bytes.
    public static var peakResidentBytes: Int {
        #if canImport(Glibc)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
        #else
        return 0
        #endif
    }
}
