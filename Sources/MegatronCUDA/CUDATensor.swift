import MegatronBackend
import TensorStorage

/// How a tensor's elements are stored on the GPU.
enum Element: String, Sendable {
    case f32, f16, bf16

    var size: Int { self == .f32 ? 4 : 2 }

    /// cudaDataType for cuBLASLt.
    var cudaType: Int32 {
        switch self {
        case .f32: CUBLASLt.r32F
        case .f16: CUBLASLt.r16F
        case .bf16: CUBLASLt.r16BF
        }
    }

    /// The element a storage dtype's matrices are kept in on the GPU.
    init(_ dtype: DType) {
        switch dtype {
        case .fp16: self = .f16
        case .bf16: self = .bf16
        case .fp32, .int8: self = .f32
        }
    }
}

/// Activations on the GPU: (rows, width) row-major, in FP32 (the residual stream, outputs read back) or in the
/// compute precision (what products read and write between layers).
final class CUDATensor: DeviceTensor, @unchecked Sendable {
    let shape: [Int]
    let element: Element
    let buffer: DeviceBuffer

    var address: UInt64 { buffer.address }
    var count: Int { shape.reduce(1, *) }

    init(shape: [Int], element: Element, pool: DeviceMemoryPool) throws {
        self.shape = shape
        self.element = element
        buffer = try DeviceBuffer(pool: pool, bytes: max(shape.reduce(1, *), 1) * element.size)
    }
}

/// A weight matrix (M, K) uploaded once in its storage dtype's element (FP32, FP16 or BF16).
final class CUDAMatrix: PreparedMatrix, @unchecked Sendable {
    let shape: [Int]
    let dtype: DType
    let element: Element
    let buffer: DeviceBuffer

    init(shape: [Int], dtype: DType, element: Element, buffer: DeviceBuffer) {
        self.shape = shape
        self.dtype = dtype
        self.element = element
        self.buffer = buffer
    }
}

/// A bias or LayerNorm vector, uploaded on first use in each element type asked for: FP32 for our kernels, the
/// output's type for cuBLASLt's bias epilogue.
final class CUDAVector: PreparedVector, @unchecked Sendable {
    let count: Int
    let values: [Float]
    private var copies: [Element: DeviceBuffer] = [:]

    init(values: [Float]) {
        count = values.count
        self.values = values
    }

    /// The vector in `element` on the device (called with the device's lock held).
    func address(in element: Element, on device: CUDADevice) throws -> UInt64 {
        if let copy = copies[element] { return copy.address }
        let copy: DeviceBuffer
        switch element {
        case .f32: copy = try values.withUnsafeBytes { try device.upload($0) }
        case .f16: copy = try values.map(floatToHalf).withUnsafeBytes { try device.upload($0) }
        case .bf16: copy = try values.map(floatToBFloat16).withUnsafeBytes { try device.upload($0) }
        }
        copies[element] = copy
        return copy.address
    }
}
