import Foundation

/// SplitMix64: a small seeded generator whose state is one number, the same draws on every machine — the op checks'
/// random inputs, the fuzz tests' mutations, and training's dropout masks, shuffles and new heads (a checkpoint saves
/// the state, so a resumed run draws the same).
///
/// ```swift
/// var random = SeededRandom(seed: 42)
/// let u = random.uniform()  // [0, 1)
/// ```
public struct SeededRandom: RandomNumberGenerator, Sendable, Equatable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Moves the generator past `count` draws at once (SplitMix64's state only counts): a copy advanced by `i`
    /// draws `next()`'s `i`-th value, so that long runs of draws can be split across cores.
    public mutating func skip(_ count: Int) { state &+= UInt64(count) &* 0x9E37_79B9_7F4A_7C15 }

    /// Uniform in [0, 1), 53 bits.
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u = max(uniform(), Double.leastNonzeroMagnitude), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}
