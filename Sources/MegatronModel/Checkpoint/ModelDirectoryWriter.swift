import Foundation

/// Writes a Hugging Face model directory whole or not at all: the files go into a hidden directory beside it, which is
/// renamed into place at the end, so an interrupted run leaves the old directory (or none), never a mix. A hidden lock
/// file beside it (`.NAME.lock`) makes a second writer of the same directory fail at once instead of interleaving. An
/// existing directory is replaced only when it holds nothing but `files` (what this kind of writer writes). What an
/// interrupted earlier run left (its staging directory, or the old directory moved aside) is cleaned up first.
///
/// ```swift
/// try ModelDirectoryWriter(directory: "out", files: ["config.json", "model.safetensors"], writer: "conversion",
///                          advice: "convert into a new or empty directory").write { staging in
///     try config.jsonData().write(to: staging.appendingPathComponent("config.json"))
/// }
/// ```
public struct ModelDirectoryWriter {
    public let directory: String
    /// The names this kind of writer writes (a directory holding anything else is not replaced).
    public let files: Set<String>
    /// What writes ("conversion", "fine-tune"), for the messages.
    public let writer: String
    /// What to do instead when the directory holds other files.
    public let advice: String

    public init(directory: String, files: Set<String>, writer: String, advice: String) {
        self.directory = directory
        self.files = files
        self.writer = writer
        self.advice = advice
    }

    /// Calls `fill` with the staging directory, then renames it into place.
    public func write(_ fill: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let parent = target.deletingLastPathComponent(), name = target.lastPathComponent
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw ModelError(.resource, "cannot create the directory \(parent.path) for \(directory): \((error as NSError).localizedDescription)")
        }
        let lock = try DirectoryLock(parent.appendingPathComponent(".\(name).lock").path, for: directory, writer: writer)
        defer { lock.release() }
        // What an interrupted earlier run left: its staging directory (removed), or the old directory it had moved
        // aside just before renaming the new one in (put back, if nothing took its place).
        let leftovers = (try? fm.contentsOfDirectory(atPath: parent.path)) ?? []
        for entry in leftovers where entry.hasPrefix(".\(name).old-") && !fm.fileExists(atPath: target.path) {
            try? fm.moveItem(at: parent.appendingPathComponent(entry), to: target)
        }
        for entry in leftovers where entry.hasPrefix(".\(name).partial-") || entry.hasPrefix(".\(name).old-") {
            try? fm.removeItem(at: parent.appendingPathComponent(entry))
        }
        var isDirectory: ObjCBool = false
        let exists = fm.fileExists(atPath: target.path, isDirectory: &isDirectory)
        if exists {
            guard isDirectory.boolValue else { throw ModelError("\(directory) exists and is not a directory: choose another --output") }
            let others = try fm.contentsOfDirectory(atPath: target.path).filter { !files.contains($0) }.sorted()
            guard others.isEmpty else {
                throw ModelError("\(directory) holds files a \(writer) does not write (\(others.prefix(5).joined(separator: ", "))): \(advice)")
            }
        }
        let suffix = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let staging = parent.appendingPathComponent(".\(name).partial-\(suffix)")
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch {
            throw ModelError(.resource, "cannot write into \(parent.path): \((error as NSError).localizedDescription)")
        }
        var staged = true
        defer { if staged { try? fm.removeItem(at: staging) } }
        try fill(staging)
        // Into place: the old directory aside, the new one in, the old one gone.
        if exists {
            let old = parent.appendingPathComponent(".\(name).old-\(suffix)")
            try fm.moveItem(at: target, to: old)
            do {
                try fm.moveItem(at: staging, to: target)
            } catch {
                try? fm.moveItem(at: old, to: target)
                throw error
            }
            try? fm.removeItem(at: old)
        } else {
            try fm.moveItem(at: staging, to: target)
        }
        staged = false
    }
}

/// An exclusive lock on a file (`flock`), taken without waiting; released by `release()` or when the process ends.
package final class DirectoryLock {
    private var descriptor: Int32

    package init(_ path: String, for directory: String, writer: String = "conversion") throws {
        descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ModelError(.resource, "cannot create the lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            descriptor = -1
            throw ModelError(.resource, "another \(writer) is writing \(directory) right now (\(path) is locked): wait for it to finish, or write elsewhere")
        }
    }

    package func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
