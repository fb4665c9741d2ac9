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

    public init(dtype: StorageDType, shape: [Int], bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
        self.owner = owner
    }

    /// Number of elements (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }

    /// The floating-point elements widened to `Float` (F64 narrowed); integer tensors give zeros.
    public func toFloats() -> [Float] {
        let n = count
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            let b = bytes
            switch dtype {
            case .float32:
                for i in 0..<n { out[i] = b.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
            case .float64:
                for i in 0..<n { out[i] = Float(b.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            case .float16:
                for i in 0..<n { out[i] = halfToFloat(b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
            case .bfloat16:
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16) }
            default:
                for i in 0..<n { out[i] = 0 }
            }
            initialized = n
        }
    }

    /// The elements converted to `Double`, for tests and small tensors.
    public func toDoubles() -> [Double] {
        var out = [Double]()
        out.reserveCapacity(count)
        for i in 0..<count {
            let o = i * dtype.size
            switch dtype {
            case .float64: out.append(bytes.loadUnaligned(fromByteOffset: o, as: Double.self))
            case .float32: out.append(Double(bytes.loadUnaligned(fromByteOffset: o, as: Float.self)))
            case .float16: out.append(Double(halfToFloat(bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
            case .bfloat16:
                out.append(Double(Float(bitPattern: UInt32(bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self)) << 16)))
            case .int64: out.append(Double(bytes.loadUnaligned(fromByteOffset: o, as: Int64.self)))
            case .int32: out.append(Double(bytes.loadUnaligned(fromByteOffset: o, as: Int32.self)))
            case .int16: out.append(Double(bytes.loadUnaligned(fromByteOffset: o, as: Int16.self)))
            case .int8: out.append(Double(bytes.loadUnaligned(fromByteOffset: o, as: Int8.self)))
            case .uint8, .bool: out.append(Double(bytes[o]))
            }
        }
        return out
    }
}

/// A heap buffer that owns bytes a `StoredTensor` points at (used when bytes must be copied).
public final class OwnedBytes: @unchecked Sendable {
    public let pointer: UnsafeMutableRawBufferPointer

    public init(count: Int) {
        pointer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: pointer[0..<pointer.count]) }
}

/// IEEE half bits to Float, exact for every value (normals, subnormals, infinities, NaN).
@inline(__always)
public func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1f
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        // zero or subnormal: mantissa * 2^-24
        let magnitude = Float(mantissa) * (1.0 / 16_777_216.0)
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 0x1f {
        return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// Float to IEEE half bits, rounding to nearest even (as PyTorch's `.half()` does).
public func floatToHalf(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xff)
    var mantissa = bits & 0x7f_ffff
    if exponent == 0xff {  // inf or NaN
        return sign | 0x7c00 | (mantissa != 0 ? 0x200 : 0)
    }
    let e = exponent - 127 + 15
    if e >= 0x1f { return sign | 0x7c00 }
    if e <= 0 {
        if e < -10 { return sign }
        mantissa |= 0x80_0000
        let shift = UInt32(14 - e)
        var half = mantissa >> shift
        let rest = mantissa & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        if rest > halfway || (rest == halfway && (half & 1) == 1) { half += 1 }
        return sign | UInt16(half)
    }
    var half = UInt32(e) << 10 | (mantissa >> 13)
    let rest = mantissa & 0x1fff
    if rest > 0x1000 || (rest == 0x1000 && (half & 1) == 1) { half += 1 }
    return sign | UInt16(truncatingIfNeeded: half)
}

/// Float to bfloat16 bits, rounding to nearest even (as PyTorch does).
public func floatToBFloat16(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    if f.isNaN { return UInt16(bits >> 16) | 0x40 }
    let rounding = UInt32(0x7fff) + ((bits >> 16) & 1)
    return UInt16((bits &+ rounding) >> 16)
}
