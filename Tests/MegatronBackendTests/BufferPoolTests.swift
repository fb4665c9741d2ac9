import Testing
@testable import MegatronBackend

@Suite struct BufferPoolTests {
    @Test func classesWasteAtMostAnEighth() {
        for bytes in [65_536, 65_537, 100_000, 999_999, 1 << 20, 3_000_001, 123_456_789] {
            let size = BufferPool.sizeClass(bytes)
            #expect(size >= bytes && Double(size - bytes) <= Double(bytes) / 8, "\(bytes) -> \(size)")
        }
        #expect(BufferPool.sizeClass(1 << 20) == 1 << 20)
    }

    /// A batch of another length asks for a slightly different size: it gets the buffer given back before.
    @Test func nearbySizesShareBuffers() {
        let pool = BufferPool(capacity: 8 << 20)
        let first = pool.take(1_000_000)
        pool.give(first, 1_000_000)
        let second = pool.take(990_000)
        #expect(second == first)
        pool.give(second, 990_000)
    }

    /// A full pool lets other sizes go to take a new one, and never holds more than its capacity.
    @Test func aFullPoolMakesRoom() {
        let pool = BufferPool(capacity: 3 << 20)
        let a = pool.take(2 << 20), b = pool.take(1 << 20), c = pool.take(1 << 20)
        pool.give(a, 2 << 20)  // 2 MB pooled
        pool.give(b, 1 << 20)  // 3 MB pooled: full
        pool.give(c, 1 << 20)  // the 2 MB buffer goes to make room
        // (Not `take(2 MB) != a`: malloc may hand the freed address out again.)
        #expect(pool.held == [1 << 20: 2], "the 2 MB buffer was let go, the two 1 MB ones are held")
        let d = pool.take(1 << 20), e = pool.take(1 << 20)
        #expect(Set([d, e]) == Set([b, c]))
    }
}
