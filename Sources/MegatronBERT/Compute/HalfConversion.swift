/// Branch-free conversions between FP32 and FP16/BF16 bit patterns, written so the compiler vectorises them.
enum HalfConversion {
    /// FP16 → FP32, exact for every input: the magnitude bits shifted into FP32 position and rescaled
    /// by 2^112 (which also normalises subnormals); infinities and NaNs get the all-ones exponent.
    @inline(__always)
    static func widenHalf(_ source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
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

    /// BF16 → FP32: the upper half of the FP32 bits.
    @inline(__always)
    static func widenBFloat16(_ source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            destination[i] = Float(bitPattern: UInt32(source[i]) << 16)
        }
    }
}
