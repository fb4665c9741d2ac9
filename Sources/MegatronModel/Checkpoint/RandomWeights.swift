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

    /// A matrix stored in `format` (F32, F16 or BF16), values uniform with standard deviation 0.02.
    mutating func matrix(_ shape: [Int], format: StorageDType) -> StoredTensor {
        let n = shape.reduce(1, *)
        let owned = OwnedBytes(count: n * format.size)
        let raw = owned.pointer.baseAddress!
        let amplitude = Float(0.02 * 3.0.squareRoot())
        for i in 0..<n {
            let v = amplitude * next()
            switch format {
            case .float16: raw.storeBytes(of: floatToHalf(v), toByteOffset: i * 2, as: UInt16.self)
            case .bfloat16: raw.storeBytes(of: floatToBFloat16(v), toByteOffset: i * 2, as: UInt16.self)
            default: raw.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
            }
        }
        return StoredTensor(dtype: format, shape: shape, bytes: UnsafeRawBufferPointer(rebasing: owned.bytes[0..<(n * format.size)]),
                            owner: owned)
    }

    mutating func vector(_ count: Int, centre: Float) -> [Float] {
        (0..<count).map { _ in centre + 0.02 * next() }
    }
}
