import TensorFiles

/// The precision model weights are kept in (storage). How a backend computes with them is its own
/// `computePrecision`: the CPU backend widens half-precision weights to FP32 right before each matrix product, so
/// they take half the memory and change results only by their rounding.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case fp32, fp16, bf16

    public var description: String { rawValue }

    /// Bytes per stored weight element.
    public var size: Int { self == .fp32 ? 4 : 2 }

    /// The file format of this precision.
    public var storage: StorageDType {
        switch self {
        case .fp32: .float32
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

    public var description: String { rawValue }
}
