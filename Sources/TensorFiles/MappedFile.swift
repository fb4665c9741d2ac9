@_exported import TensorStorage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file; the mapping lives as long as this object.
///
/// ```swift
/// let file = try MappedFile(path: "model.safetensors")
/// print(file.bytes.count)
/// ```
public final class MappedFile: FileMapping, @unchecked Sendable {
    public let path: String
    /// The file's bytes (empty for an empty file).
    public let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawPointer?

    /// Maps the whole file read-only.
    /// - Throws: `TensorFileError` when it cannot be opened or mapped.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw TensorFileError(path: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw TensorFileError(path: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw TensorFileError(path: path, "not a regular file")
        }
        let size = Int(info.st_size)
        if size == 0 {
            base = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw TensorFileError(path: path, "cannot memory-map: \(String(cString: strerror(errno)))")
        }
        base = mapped
        bytes = UnsafeRawBufferPointer(start: mapped, count: size)
    }

    deinit {
        if let base { munmap(base, bytes.count) }
    }
}
