import Foundation
/// Every conversion between number formats in the package, in one place: IEEE half (FP16) and bfloat16 to and
/// from FP32 (one value, and whole rows written so the compiler vectorises them), rounding FP32 values to a
/// narrower format, and stored tensors widened or cast. Rounding is to nearest even, as PyTorch's `.half()` and
/// `.bfloat16()` do; widening is exact.
public enum NumberFormats {
    /// FP16 → FP32 for `count` values: the magnitude bits shifted into FP32 position and rescaled by 2^112 (which
    /// also normalises subnormals); infinities and NaNs get the all-ones exponent. Exact for every input.
    public static func widenHalf(_ source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
        let scale = Float(bitPattern: 0x7780_0000)  // 2^112
        for i in 0..<count {
            let h = UInt32(source[i])
            let magnitude = (h & 0x7fff) << 13
            var f = Float(bitPattern: magnitude) * scale
            let infOrNaN = (h & 0x7c00) == 0x7c00
            f = infOrNaN ? Float(bitPattern: magnitude | 0x7f80_0000) : f
            destination[i] = Float(bitPattern: f.bitPattern | ((h & 0x8000) << 16))
        }
    }

    /// BF16 → FP32 for `count` values: the upper half of the FP32 bits.
    public static func widenBFloat16(_ source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            destination[i] = Float(bitPattern: UInt32(source[i]) << 16)
        }
    }

    /// `values` rounded to `format` and widened back (what a weight kept in that format holds).
    public static func rounded(_ values: [Float], to format: StorageDType) -> [Float] {
        switch format {
        case .float16: values.map { halfToFloat(floatToHalf($0)) }
        case .bfloat16: values.map { bfloat16ToFloat(floatToBFloat16($0)) }
        default: values
        }
    }
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

/// bfloat16 bits to Float (exact: the upper half of the FP32 bits).
@inline(__always)
public func bfloat16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

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

extension StoredTensor {
    /// The floating-point elements widened to `Float` (F64 narrowed); integer tensors give zeros.
    public func toFloats() -> [Float] {
        let n = count
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            if n > 0 { floats(0..<n, into: out.baseAddress!) }
            initialized = n
        }
    }

    /// Elements `range` widened to `Float` into `out` (range.count of them).
    func floats(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let b = bytes, first = range.lowerBound
        switch dtype {
        case .float32:
            for i in range { out[i - first] = b.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
        case .float64:
            for i in range { out[i - first] = Float(b.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        case .float16:
            for i in range { out[i - first] = halfToFloat(b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
        case .bfloat16:
            for i in range { out[i - first] = bfloat16ToFloat(b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
        default:
            for i in range { out[i - first] = 0 }
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
            case .bfloat16: out.append(Double(bfloat16ToFloat(bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
            case .int64: out.append(Double(bytes.loadUnaligned(fromByteOffset: o, as: Int64.self)))
            case .int32: out.append(Double(bytes.loadUnaligned(fromByteOffset: o, as: Int32.self)))
            case .int16: out.append(Double(bytes.loadUnaligned(fromByteOffset: o, as: Int16.self)))
            case .int8: out.append(Double(bytes.loadUnaligned(fromByteOffset: o, as: Int8.self)))
            case .uint8, .bool: out.append(Double(bytes[o]))
            }
        }
        return out
    }

    /// The tensor in another floating-point format (F32, F16 or BF16), rounded to nearest even, in a new buffer;
    /// itself when it already is in that format or is not floating point. Large tensors convert on every core, in
    /// chunks of 64 Ki elements (loading the 345M model as FP16 converts 335 M of them).
    public func converted(to format: StorageDType) -> StoredTensor {
        guard dtype.isFloatingPoint, dtype != format, format.isFloatingPoint else { return self }
        let n = count
        let owned = OwnedBytes(count: n * format.size)
        let raw = owned.pointer.baseAddress!
        let chunk = 1 << 16, chunks = (n + chunk - 1) / chunk
        let parts = min(chunks, max(1, ProcessInfo.processInfo.activeProcessorCount))
        DispatchQueue.concurrentPerform(iterations: max(parts, 1)) { part in
            var values = [Float](repeating: 0, count: min(chunk, n))
            for c in stride(from: part, to: chunks, by: max(parts, 1)) {
                let range = c * chunk..<min(n, (c + 1) * chunk)
                values.withUnsafeMutableBufferPointer { floats(range, into: $0.baseAddress!) }
                for (k, v) in values.prefix(range.count).enumerated() {
                    let i = range.lowerBound + k
                    switch format {
                    case .float64: raw.storeBytes(of: Double(v), toByteOffset: i * 8, as: Double.self)
                    case .float32: raw.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
                    case .float16: raw.storeBytes(of: floatToHalf(v), toByteOffset: i * 2, as: UInt16.self)
                    default: raw.storeBytes(of: floatToBFloat16(v), toByteOffset: i * 2, as: UInt16.self)
                    }
                }
            }
        }
        return StoredTensor(dtype: format, shape: shape, bytes: UnsafeRawBufferPointer(rebasing: owned.bytes[0..<(n * format.size)]), owner: owned)
    }
}
