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

    /// "12.3 GB" for messages.
    public static func describe(_ bytes: Int) -> String {
        bytes >= 1 << 30 ? String(format: "%.1f GB", Double(bytes) / Double(1 << 30))
            : String(format: "%.1f MB", Double(bytes) / Double(1 << 20))
    }
}
