import CTrainingKernels
import MegatronBackend

/// Dropout as transformers applies it in training: each element kept with probability 1 − p and scaled by 1 / (1 − p),
/// else zeroed; the identity when p is 0 (and in evaluation). The mask is drawn from a seeded generator and saved,
/// so that the backward pass multiplies by the same mask — and a test can inject the masks PyTorch drew.
struct Dropout {
    let probability: Double

    /// A mask of `count` factors (0 or 1 / (1 − p)), nil when nothing is dropped. A tensor (from the buffer pool,
    /// like the activations it sits beside).
    func mask(count: Int, _ random: inout SeededRandom) -> Tensor? {
        guard probability > 0 else { return nil }
        let mask = Tensor(uninitializedShape: [count])
        fill(mask.data, count: count, &random)
        return mask
    }

    /// Draws `count` factors into `out`: factor i keeps when the generator's i-th uniform draw is under 1 − p, split
    /// across cores (each chunk from a copy of the generator skipped to its start; the same draws as one after another).
    func fill(_ out: UnsafeMutablePointer<Float>, count: Int, _ random: inout SeededRandom) {
        let keep = 1 - probability, scale = Float(1 / keep)
        // uniform() = (next() >> 11) / 2⁵³ < keep ⇔ the integer next() >> 11 < ⌈keep · 2⁵³⌉ (both sides exact).
        let threshold = UInt64((keep * 0x1p53).rounded(.up)), start = random
        random.skip(count)
        inChunks(count) { range in
            var random = start
            random.skip(range.lowerBound)
            mb_dropout_mask(out + range.lowerBound, range.count, random.state, threshold, scale)  // next()'s draws, in C
        }
    }

    /// x ⊙ mask in place (forward), or dy ⊙ mask in place (backward: the same operation).
    static func apply(_ mask: Tensor?, to x: Tensor) {
        guard let mask else { return }
        inChunks(x.count) { range in for i in range { x.data[i] *= mask.data[i] } }
    }
}
