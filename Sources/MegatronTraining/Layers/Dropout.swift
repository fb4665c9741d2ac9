import CTrainingKernels
import MegatronBackend

/// Dropout as transformers applies it in training: each element kept with probability 1 − p and scaled by 1 / (1 − p),
/// else zeroed; the identity when p is 0 (and in evaluation). The mask is drawn from a seeded generator and saved,
/// so that the backward pass multiplies by the same mask.
struct Dropout {
    let probability: Double

    /// A mask of `count` elements, nil when nothing is dropped.
    func mask(count: Int, _ random: inout SeededRandom) -> DropoutMask? {
        guard probability > 0 else { return nil }
        let mask = DropoutMask(count: count, scale: Float(1 / (1 - probability)))
        fill(mask.kept, count: count, &random)
        return mask
    }

    /// Draws `count` elements into `kept`: element i is kept when the generator's i-th uniform draw is under 1 − p,
    /// split across cores (each chunk from a copy of the generator skipped to its start; the same draws as one after
    /// another).
    func fill(_ kept: UnsafeMutablePointer<UInt8>, count: Int, _ random: inout SeededRandom) {
        // uniform() = (next() >> 11) / 2⁵³ < keep ⇔ the integer next() >> 11 < ⌈keep · 2⁵³⌉ (both sides exact).
        let threshold = UInt64(((1 - probability) * 0x1p53).rounded(.up)), start = random
        random.skip(count)
        inChunks(count) { range in
            var random = start
            random.skip(range.lowerBound)
            mb_dropout_mask(kept + range.lowerBound, range.count, random.state, threshold)  // next()'s draws, in C
        }
    }

    /// x ⊙ mask in place (forward), or dy ⊙ mask in place (backward: the same operation).
    static func apply(_ mask: DropoutMask?, to x: Tensor) {
        guard let mask else { return }
        inChunks(x.count) { range in mask.apply(to: x.data + range.lowerBound, from: range.lowerBound, count: range.count) }
    }
}

/// A dropout mask: a byte per element, 1 where it is kept, and the factor kept elements are multiplied by, 1 / (1 − p).
/// A quarter of the memory of the factors as floats (a step of the 345M model at 8 × 128 saves 73 masks: 290 MB),
/// and the same products: x · (kept ? scale : 0).
final class DropoutMask: @unchecked Sendable {
    let count: Int
    let scale: Float
    /// 1 (kept) or 0 per element, from the buffer pool like the activations it sits beside.
    let kept: UnsafeMutablePointer<UInt8>

    init(count: Int, scale: Float) {
        self.count = count
        self.scale = scale
        kept = BufferPool.shared.take(max(count, 1)).bindMemory(to: UInt8.self, capacity: max(count, 1))
    }

    deinit { BufferPool.shared.give(UnsafeMutableRawPointer(kept), max(count, 1)) }

    /// The factors, 0 or `scale` (for tests).
    var factors: [Float] { (0..<count).map { kept[$0] == 0 ? 0 : scale } }

    /// x[i] ·= factor of element `start` + i, for `count` floats.
    func apply(to x: UnsafeMutablePointer<Float>, from start: Int, count: Int) {
        mb_dropout_apply(x, kept + start, count, scale)
    }
}
