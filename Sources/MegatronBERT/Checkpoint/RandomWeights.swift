import TensorFiles

/// Deterministic made-up weights for benchmarks: uniform with standard deviation 0.02 (BERT's
/// initializer range), stored directly in the requested precision.
struct RandomWeights {
    private var state: UInt64

    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

    /// Uniform in [-1, 1).
    private mutating func next() -> Float {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(Int32(truncatingIfNeeded: state >> 32)) * (1.0 / 2_147_483_648.0)
    }

    mutating func matrix(_ shape: [Int], dtype: DType) -> Weight {
        let n = shape.reduce(1, *)
        let owned = OwnedBytes(count: n * dtype.size)
        let raw = owned.pointer.baseAddress!
        let amplitude = Float(0.02 * 3.0.squareRoot())
        switch dtype {
        case .fp32:
            let p = raw.bindMemory(to: Float.self, capacity: n)
            for i in 0..<n { p[i] = amplitude * next() }
            return Weight(shape: shape, storage: .fp32(p), owner: owned)
        case .fp16:
            let p = raw.bindMemory(to: UInt16.self, capacity: n)
            for i in 0..<n { p[i] = floatToHalf(amplitude * next()) }
            return Weight(shape: shape, storage: .fp16(p), owner: owned)
        case .bf16:
            let p = raw.bindMemory(to: UInt16.self, capacity: n)
            for i in 0..<n { p[i] = floatToBFloat16(amplitude * next()) }
            return Weight(shape: shape, storage: .bf16(p), owner: owned)
        }
    }

    mutating func vector(_ count: Int, centre: Float) -> [Float] {
        (0..<count).map { _ in centre + 0.02 * next() }
    }
}
