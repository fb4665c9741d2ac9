import Foundation

/// How much memory this process may use: the machine's physical memory, or the container's limit (cgroup v2
/// `memory.max`, v1 `memory.limit_in_bytes`) when that is lower. Sizes read from files and flags are checked
/// against it before anything that large is allocated.
public enum MemoryBudget {
    public static let bytes: Int = {
        var limit = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
               let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), value > 0 {
                limit = min(limit, value)
            }
        }
        return max(limit, 1 << 30)
    }()

    /// This process's resident memory now (`/proc/self/statm`), 0 where that cannot be read.
    public static var residentBytes: Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// What is left for new work: the budget less what the process holds, or less `reserved` (e.g. weights
    /// mapped but not yet read in) when that is more.
    public static func available(reserved: Int = 0) -> Int {
        max(0, bytes - max(residentBytes, reserved))
    }

    /// "12.3 GB" for messages.
    public static func describe(_ bytes: Int) -> String {
        bytes >= 1 << 30 ? String(format: "%.1f GB", Double(bytes) / Double(1 << 30))
            : String(format: "%.1f MB", Double(bytes) / Double(1 << 20))
    }
}
