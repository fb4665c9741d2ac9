#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Marks an owner of tensor bytes that maps a file (`TensorFiles.MappedFile`): its pages can be given back to the kernel
/// and read again from the file.
public protocol FileMapping: AnyObject {}

extension StoredTensor {
    /// Tells the kernel the tensor's whole pages will not be read again (after packing or copying): pages of a
    /// memory-mapped file leave the process's resident memory (they are read back from the file if ever needed).
    /// Does nothing for a tensor held on the heap.
    public func releasePages() {
        guard owner is FileMapping, let base = bytes.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + page - 1) / page * page, end = (Int(bitPattern: base) + bytes.count) / page * page
        guard end > start, let pointer = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(pointer, end - start, MADV_DONTNEED)
    }

    /// The same tensor in a new, 64-byte aligned buffer (at least one byte, so it always has an address).
    public func copied() -> StoredTensor {
        let owned = OwnedBytes(count: bytes.count)
        if !bytes.isEmpty { owned.pointer.copyMemory(from: bytes) }
        return StoredTensor(dtype: dtype, shape: shape, bytes: UnsafeRawBufferPointer(rebasing: owned.bytes[0..<bytes.count]),
                            owner: owned)
    }

    /// Matrices of the same column count stacked row-wise into one, in `format` (each part converted to it first):
    /// parts (n_i, k) → (Σ n_i, k), in a new 64-byte aligned buffer. Each part's pages are released afterwards
    /// (`releasePages`), so a memory-mapped file's copy does not stay resident beside the stacked one.
    ///
    /// ```swift
    /// // Q, K and V weights (H, H) each → one (3H, H) matrix for a single product.
    /// let qkv = try StoredTensor.stacked([query, key, value], format: .float32)
    /// ```
    public static func stacked(_ parts: [StoredTensor], format: StorageDType) throws -> StoredTensor {
        guard let first = parts.first, first.shape.count == 2,
              parts.allSatisfy({ $0.shape.count == 2 && $0.shape[1] == first.shape[1] }) else {
            throw TensorFileError(path: "", "internal error: only matrices of the same column count stack (shapes \(parts.map(\.shape)))")
        }
        let converted = parts.map { $0.converted(to: format) }
        let total = converted.reduce(0) { $0 + $1.bytes.count }
        let owned = OwnedBytes(count: total)
        var offset = 0
        for part in converted where !part.bytes.isEmpty {
            (owned.pointer.baseAddress! + offset).copyMemory(from: part.bytes.baseAddress!, byteCount: part.bytes.count)
            offset += part.bytes.count
        }
        for part in parts { part.releasePages() }
        return StoredTensor(dtype: format, shape: [parts.reduce(0) { $0 + $1.shape[0] }, first.shape[1]],
                            bytes: UnsafeRawBufferPointer(rebasing: owned.bytes[0..<total]), owner: owned)
    }
}
