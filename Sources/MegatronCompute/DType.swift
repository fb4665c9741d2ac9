import TensorFiles

/// The precision model weights are kept in. Compute is FP32 in every mode: half-precision weights are
/// widened to FP32 right before each matrix product, so they take half the memory and change results
/// only by their rounding.
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
