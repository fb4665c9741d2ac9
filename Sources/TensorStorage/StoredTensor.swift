/// The element types a checkpoint may store.
public enum StorageDType: String, Sendable, CaseIterable {
    case float64 = "F64", float32 = "F32", float16 = "F16", bfloat16 = "BF16"
    case int64 = "I64", int32 = "I32", int16 = "I16", int8 = "I8", uint8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16, .int16: 2
        case .int8, .uint8, .bool: 1
        }
    }

    /// Whether this is a floating-point type (the only kind model weights may use).
    public var isFloatingPoint: Bool {
        switch self {
        case .float64, .float32, .float16, .bfloat16: true
        default: false
        }
    }
}

/// One named tensor as a file stores it: dtype, shape and contiguous row-major bytes.
///
/// The bytes usually point into a memory-mapped file; `owner` keeps that mapping alive.
public struct StoredTensor: @unchecked Sendable {
    public var dtype: StorageDType
    public var shape: [Int]
    public var bytes: UnsafeRawBufferPointer
    /// Whatever owns `bytes` (a `MappedFile`, or a heap copy).
    public var owner: AnyObject

    /// A tensor over `bytes` (row-major, `dtype` elements), kept alive by `owner`.
    public init(dtype: StorageDType, shape: [Int], bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
        self.owner = owner
    }

    /// Number of elements (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
}

/// A heap buffer that owns bytes a `StoredTensor` points at (used when bytes must be copied).
public final class OwnedBytes: @unchecked Sendable {
    public let pointer: UnsafeMutableRawBufferPointer

    /// `count` uninitialised bytes, 64-byte aligned (at least one, so there is always an address).
    public init(count: Int) {
        pointer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }

    /// The bytes, read-only.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: pointer[0..<pointer.count]) }
}
