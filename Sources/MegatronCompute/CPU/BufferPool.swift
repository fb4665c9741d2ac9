import Foundation

/// Keeps freed activation buffers of 1 MB and more for the next forward pass, which asks for the same
/// sizes again: no page faults and no kernel zeroing of fresh pages each pass (measured ~3% of an 8x128
/// pass). At most `capacity` bytes wait in the pool; beyond that buffers go back to the system.
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool(capacity: 256 << 20)
    /// Smaller buffers come from malloc as usual.
    static let minimumBytes = 1 << 20

    private let capacity: Int
    private let lock = NSLock()
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var pooledBytes = 0

    init(capacity: Int) { self.capacity = capacity }

    /// A 64-byte aligned buffer of `bytes` bytes, uninitialised.
    func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= Self.minimumBytes {
            lock.lock()
            defer { lock.unlock() }
            if let buffer = free[bytes]?.popLast() {
                pooledBytes -= bytes
                return buffer
            }
        }
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    }

    /// Returns a buffer from `take`.
    func give(_ buffer: UnsafeMutableRawPointer, _ bytes: Int) {
        if bytes >= Self.minimumBytes {
            lock.lock()
            defer { lock.unlock() }
            if pooledBytes + bytes <= capacity {
                free[bytes, default: []].append(buffer)
                pooledBytes += bytes
                return
            }
        }
        buffer.deallocate()
    }
}
