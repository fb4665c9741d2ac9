import Foundation

/// Where tests put their temporary files: one directory per test process, removed when the process exits, so
/// repeated test runs leave nothing behind in the temporary directory.
///
/// ```swift
/// let output = Scratch.path("out.safetensors")   // e.g. /tmp/megatron-bert-tests-4242/5D1C…-out.safetensors
/// ```
public enum Scratch {
    /// This process's directory, made on first use.
    public static let directory: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("megatron-bert-tests-\(getpid())").path
        try? FileManager.default.removeItem(atPath: path)  // left by an earlier process with the same id that crashed
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: Scratch.directory) }
        return path
    }()

    /// A fresh path inside `directory`, ending in `name` (nothing is created there).
    public static func path(_ name: String) -> String {
        directory + "/\(UUID().uuidString)-\(name)"
    }
}
