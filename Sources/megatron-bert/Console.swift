import Foundation

/// Standard output and standard error for every command, written with write(2) and checked: a full disk or a
/// vanished file is a clear error and exit status 1 (never a crash, never silently lost output), and a reader
/// that stops early (`| head -1`) ends the command quietly with status 0. Standard output is buffered and
/// flushed at the end of each chunk of results and when the command ends.
enum Console {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var buffer: [UInt8] = []

    /// One line on standard output.
    static func line(_ text: String) {
        lock.lock()
        buffer.append(contentsOf: text.utf8)
        buffer.append(UInt8(ascii: "\n"))
        let full = buffer.count >= 1 << 16
        lock.unlock()
        if full { flush() }
    }

    /// Writes out what is buffered.
    static func flush() {
        lock.lock()
        defer { lock.unlock() }
        let pending = buffer
        buffer.removeAll(keepingCapacity: true)
        if let failure = writeAll(STDOUT_FILENO, pending) {
            if failure == EPIPE { exit(0) }
            let message = "Error: cannot write the output: \(String(cString: strerror(failure)))\n"
            _ = writeAll(STDERR_FILENO, Array(message.utf8))
            exit(1)
        }
    }

    /// Text on standard error, at once; failures are ignored (there is nowhere left to report them).
    static func error(_ text: String) {
        _ = writeAll(STDERR_FILENO, Array(text.utf8))
    }

    /// The errno of the first failed write, or nil.
    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return nil
    }
}
