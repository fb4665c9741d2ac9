import Foundation

/// Keeps freed buffers of 64 KB and more (activations, product blocks, oneDNN scratchpads) for the next forward
/// pass: no page faults and no kernel zeroing of fresh pages each pass (measured ~3% of an 8x128 pass). Requests
/// round up to size classes (at most 1/8 over), so batches of other lengths — the embed job's length-sorted batches
/// change shape every time — reuse the same buffers. Measured with `perf record -e page-faults` (int8, 500
/// sentences): with exact sizes from 1 MB the job page-faulted 2.8 million times, ~25k per forward pass even at
/// one fixed shape (glibc maps and unmaps each buffer between 128 KB and 1 MB anew); with classes from 64 KB,
/// 0.23 million, and the job took 20.7 s instead of 29.0. At most `capacity` bytes wait in the pool; a buffer
/// that does not fit pushes out others first.
package final class BufferPool: @unchecked Sendable {
    package static let shared = BufferPool(capacity: 256 << 20)
    /// Smaller buffers come from malloc as usual (its heap reuses them without new pages).
    static let minimumBytes = 64 << 10

    private var capacity: Int
    private let lock = NSLock()
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var pooledBytes = 0

    init(capacity: Int) { self.capacity = capacity }

    /// The size a request of `bytes` (≥ `minimumBytes`) is served with: rounded up to an eighth of the largest power
    /// of two not above it.
    static func sizeClass(_ bytes: Int) -> Int {
        let power = 1 << (Int.bitWidth - 1 - bytes.leadingZeroBitCount)
        let step = max(power / 8, 1)
        return (bytes + step - 1) / step * step
    }

    /// A 64-byte aligned buffer of at least `bytes` bytes, uninitialised.
    package func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard bytes >= Self.minimumBytes else { return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) }
        let size = Self.sizeClass(bytes)
        lock.lock()
        if let buffer = free[size]?.popLast() {
            pooledBytes -= size
            lock.unlock()
            return buffer
        }
        lock.unlock()
        return Self.allocate(size)
    }

    /// Buffers of 4 MB and more start on a 2 MB boundary and are offered to the kernel for transparent huge pages
    /// (`madvise(MADV_HUGEPAGE)`, which the usual `madvise` mode waits for): weights, gradients, the optimizer's
    /// moments and a pass's activations are streamed through page after page, each 4 KB page a TLB entry otherwise.
    static func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        let huge = 2 << 20
        guard size >= 2 * huge else { return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: huge)
        #if os(Linux)
        _ = madvise(buffer, (size / huge) * huge, MADV_HUGEPAGE)
        #endif
        return buffer
    }

    /// Lets the pool hold at least `bytes` (never less than now). Training, which frees a whole pass's activations each
    /// step and asks for the same shapes again, raises it so that they are reused instead of coming back from the
    /// system as fresh zeroed pages.
    package func reserve(atLeast bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        capacity = max(capacity, bytes)
    }

    /// How many buffers are held for reuse, per size class (for tests).
    var held: [Int: Int] {
        lock.lock()
        defer { lock.unlock() }
        return free.mapValues { $0.count }
    }

    /// Returns a buffer from `take(bytes)`.
    package func give(_ buffer: UnsafeMutableRawPointer, _ bytes: Int) {
        guard bytes >= Self.minimumBytes else { return buffer.deallocate() }
        let size = Self.sizeClass(bytes)
        guard size <= capacity else { return buffer.deallocate() }
        lock.lock()
        defer { lock.unlock() }
        // Make room by letting buffers of other sizes go (the shapes of the moment are the ones asked for again).
        while pooledBytes + size > capacity, let (other, list) = free.first(where: { $0.key != size && !$0.value.isEmpty }) {
            var rest = list
            rest.popLast()?.deallocate()
            free[other] = rest.isEmpty ? nil : rest
            pooledBytes -= other
        }
        guard pooledBytes + size <= capacity else { return buffer.deallocate() }
        free[size, default: []].append(buffer)
        pooledBytes += size
    }
}
