import TensorStorage

/// The precision model weights are kept in (storage). How a backend computes with them is its own
/// `computePrecision(for:)`: the CPU backend multiplies FP16 weights in FP32, for instance.
///
/// `int8` is dynamic quantization, as PyTorch's `quantize_dynamic` does it: the matrices multiplied by are int8,
/// symmetric per output channel with an FP32 scale each; each product quantizes its input per token at run time
/// and accumulates in int32; embedding tables, biases, LayerNorm, attention and activations stay FP32.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case fp32, fp16, bf16, int8

    public var description: String { rawValue }

    /// Bytes per stored element of a matrix multiplied by.
    public var size: Int {
        switch self {
        case .fp32: 4
        case .fp16, .bf16: 2
        case .int8: 1
        }
    }

    /// The floating-point format of everything not quantized: embedding tables and vectors (and, but for `int8`,
    /// every matrix).
    public var storage: StorageDType {
        switch self {
        case .fp32, .int8: .float32
        case .fp16: .float16
        case .bf16: .bfloat16
        }
    }
}

/// The precision a backend's products multiply in (accumulation is FP32 in every case). Separate from the
/// storage `DType`: FP16 weights may be widened and multiplied in FP32 (the CPU backend), or multiplied in FP16 on
/// tensor cores.
public enum ComputePrecision: String, Sendable, CaseIterable, CustomStringConvertible {
    case fp32, fp16, bf16
    /// int8 × int8 products accumulated in int32 (`DType.int8`).
    case int8

    public var description: String { rawValue }
}
