import Testing
@testable import MegatronBackend

@Suite struct SeededRandomTests {
    /// `skip(n)` lands where n draws land: the draws after it are the same, for counts across a 64-bit wrap of the
    /// state (a seed near 2⁶⁴).
    @Test(arguments: [0, 1, 7, 1000, 65_537])
    func skippingIsDrawing(count: Int) {
        for seed: UInt64 in [0, 42, .max - 3] {
            var drawn = SeededRandom(seed: seed), skipped = drawn
            for _ in 0..<count { _ = drawn.next() }
            skipped.skip(count)
            #expect(skipped == drawn)
            #expect((0..<4).map { _ in skipped.next() } == (0..<4).map { _ in drawn.next() })
        }
    }
}
