import Foundation

/// Device memory, cached by size class: a buffer given back is kept for the next request of its class (cuMemAlloc
/// is slow, and every forward pass asks for the same sizes). All work runs in order on one stream, so a buffer given
/// back can be handed out at once: work that still reads it was launched before any work that writes it again.
///
/// When the GPU has no memory left, the cached buffers are freed and the allocation tried once more; if it still
/// fails the error says how much was asked for, how much is in use, and what to do.
final class DeviceMemoryPool: @unchecked Sendable {
    private let driver: CUDADriver
    private let ordinal: Int
    private var free: [Int: [UInt64]] = [:]
    private let lock = NSLock()
    /// Bytes handed out and not given back (by size class), the most that ever were, and bytes cached.
    private(set) var inUse = 0
    private(set) var peak = 0
    private(set) var cached = 0

    init(driver: CUDADriver, ordinal: Int) {
        self.driver = driver
        self.ordinal = ordinal
    }

    /// Requests round up to 512 bytes below 1 MiB, to 2 MiB above (few classes, little waste).
    static func sizeClass(_ bytes: Int) -> Int {
        bytes < 1 << 20 ? (bytes + 511) & ~511 : (bytes + (2 << 20) - 1) & ~((2 << 20) - 1)
    }

    /// A device buffer of at least `bytes` (throws `CUDAError` when the GPU has no room for it).
    func allocate(_ bytes: Int) throws -> UInt64 {
        let size = Self.sizeClass(max(bytes, 1))
        lock.lock()
        defer { lock.unlock() }
        if var list = free[size], let address = list.popLast() {
            free[size] = list
            cached -= size
            note(size)
            return address
        }
        var address: UInt64 = 0
        var status = driver.cuMemAlloc(&address, size)
        if status == CUDADriver.outOfMemory {
            releaseCached()
            status = driver.cuMemAlloc(&address, size)
        }
        if status == CUDADriver.outOfMemory {
            var freeBytes = 0, totalBytes = 0
            _ = driver.cuMemGetInfo(&freeBytes, &totalBytes)
            throw CUDAError("out of GPU memory on cuda:\(ordinal): \(Self.mib(size)) more were needed with \(Self.mib(inUse)) in use by this model and \(Self.mib(freeBytes)) free of \(Self.mib(totalBytes)); run with a smaller --batch-size (or shorter sequences), or --dtype fp16")
        }
        try driver.check(status, "allocating \(Self.mib(size)) on cuda:\(ordinal)")
        note(size)
        return address
    }

    /// Gives a buffer from `allocate(bytes)` back to the cache.
    func release(_ address: UInt64, bytes: Int) {
        let size = Self.sizeClass(max(bytes, 1))
        lock.lock()
        free[size, default: []].append(address)
        inUse -= size
        cached += size
        lock.unlock()
    }

    /// Starts a new high-water mark (bench measures each point's own peak).
    func resetPeak() {
        lock.lock()
        peak = inUse
        lock.unlock()
    }

    private func note(_ size: Int) {
        inUse += size
        peak = max(peak, inUse)
    }

    private func releaseCached() {
        for (_, list) in free { for address in list { _ = driver.cuMemFree(address) } }
        free = [:]
        cached = 0
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
}

/// A device allocation owned by a Swift object: given back to the pool when the object goes.
final class DeviceBuffer: @unchecked Sendable {
    let address: UInt64
    let bytes: Int
    private let pool: DeviceMemoryPool

    init(pool: DeviceMemoryPool, bytes: Int) throws {
        self.pool = pool
        self.bytes = bytes
        address = try pool.allocate(bytes)
    }

    deinit { pool.release(address, bytes: bytes) }
}
