import Foundation
import MegatronBackend

/// Dropout as transformers applies it in training: each element kept with probability 1 − p and scaled by 1 / (1 − p),
/// else zeroed; the identity when p is 0 (and in evaluation). The mask is drawn from a seeded generator and saved,
/// so that the backward pass multiplies by the same mask — and a test can inject the masks PyTorch drew.
struct Dropout {
    let probability: Double

    /// A mask of `count` factors (0 or 1 / (1 − p)), nil when nothing is dropped.
    func mask(count: Int, _ random: inout SeededRandom) -> [Float]? {
        guard probability > 0 else { return nil }
        let keep = 1 - probability, scale = Float(1 / keep)
        return (0..<count).map { _ in random.uniform() < keep ? scale : 0 }
    }

    /// x ⊙ mask in place (forward), or dy ⊙ mask in place (backward: the same operation).
    static func apply(_ mask: [Float]?, to x: Tensor) {
        guard let mask else { return }
        for i in 0..<x.count { x.data[i] *= mask[i] }
    }
}

/// SplitMix64: a small seeded generator whose state is one number (a checkpoint saves it, so a resumed run draws the
/// same masks and the same shuffles).
public struct SeededRandom: Sendable, Equatable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u = max(uniform(), Double.leastNonzeroMagnitude), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}
