/// The input of an int8 product, quantized per row (per token) at run time: asymmetric, to u8 with a zero point,
/// x ≈ (q − zero) · scale, over the row's range widened to include 0 (so 0 stays exact, as PyTorch's dynamic
/// quantization does per tensor). Rows are quantized on every core.
///
/// ```swift
/// let q = QuantizedRows(x, rows: 4, k: 1024, levels: 255, into: bytes)   // x (4, 1024) -> bytes (4, 1024) u8
/// q.epilogue(sums32, rows: 0..<4, width: n, scales: w.scales, sums: w.sums, bias: b, accumulate: false, into: y, stride: n)
/// ```
struct QuantizedRows {
    /// Per row: the step between levels, and the level that stands for 0. A row with a non-finite value has a NaN
    /// scale, so its outputs are NaN as in FP32.
    var scales: [Float]
    var zeros: [Int32]

    /// Quantizes x (rows, k) into `out` (rows, k) u8, levels 0…`levels` (255, or 127 where the CPU's int8 dot
    /// products could saturate).
    init(_ x: UnsafePointer<Float>, rows: Int, k: Int, levels: Int32, into out: UnsafeMutablePointer<UInt8>) {
        var scales = [Float](repeating: 1, count: rows), zeros = [Int32](repeating: 0, count: rows)
        scales.withUnsafeMutableBufferPointer { scales in
            zeros.withUnsafeMutableBufferPointer { zeros in
                Parallel.forEach(rows, minimumPerThread: 8) { range in
                    for r in range {
                        (scales[r], zeros[r]) = Self.quantize(x + r * k, count: k, levels: Float(levels), into: out + r * k)
                    }
                }
            }
        }
        self.scales = scales
        self.zeros = zeros
    }

    typealias V = SIMD8<Float>

    /// Lane-wise max and min (the standard library's pointwiseMax/Min are not inlined: a call per vector).
    @inline(__always)
    static func larger(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .> a) }
    @inline(__always)
    static func smaller(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .< a) }

    /// v rounded to the nearest integer (ties to even), for |v| < 2²²: adding 1.5·2²³ leaves no fraction bits and
    /// puts the integer in the low mantissa bits. (Swift's own SIMD float → int conversion goes lane by lane.)
    @inline(__always)
    static func integers(_ v: V) -> SIMD8<Int32> {
        unsafeBitCast(v + 12_582_912, to: SIMD8<Int32>.self) &- 0x4B40_0000
    }

    /// One row: its scale and zero point, eight elements at a time (the tail one by one).
    @inline(__always)
    static func quantize(_ row: UnsafePointer<Float>, count k: Int, levels top: Float,
                         into q: UnsafeMutablePointer<UInt8>) -> (scale: Float, zero: Int32) {
        var low = V(repeating: 0), high = V(repeating: 0), poison = V(repeating: 0)
        var i = 0
        while i + 8 <= k {
            let v = UnsafeRawPointer(row + i).loadUnaligned(as: V.self)
            low = QuantizedRows.smaller(low, v)
            high = QuantizedRows.larger(high, v)
            poison += v - v  // NaN once any element is NaN or infinite
            i += 8
        }
        var lowest = low.min(), highest = high.max(), finite = poison.sum() == 0
        for j in i..<k {
            lowest = min(lowest, row[j])
            highest = max(highest, row[j])
            finite = finite && row[j].isFinite
        }
        guard finite else {
            q.initialize(repeating: 0, count: k)
            return (.nan, 0)
        }
        let scale: Float = highest > lowest ? (highest - lowest) / top : 1
        let zero = min(top, max(0, (-lowest / scale).rounded()))
        let inverse = 1 / scale
        i = 0
        while i + 8 <= k {
            let v = UnsafeRawPointer(row + i).loadUnaligned(as: V.self)
            // Clamped before rounding: the clamp's bounds are integers, so the order does not change the result.
            let level = QuantizedRows.smaller(V(repeating: top), QuantizedRows.larger(V(repeating: 0), v * inverse + zero))
            UnsafeMutableRawPointer(q + i).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: Self.integers(level)), as: SIMD8<UInt8>.self)
            i += 8
        }
        for j in i..<k { q[j] = UInt8(min(top, max(0, (row[j] * inverse + zero).rounded(.toNearestOrEven)))) }
        return (scale, Int32(zero))
    }

    /// y[r, j] = (sum[r, j] − zero[r] · Σ wq[j]) · scale[r] · wScale[j] + bias[j] (+ y[r, j] when accumulating),
    /// for the int32 sums of `rows` (part: (rows.count, width), its first row that of rows.lowerBound); y (rows.count,
    /// width) starts at rows.lowerBound's row, its rows `stride` floats apart.
    func epilogue(_ part: UnsafePointer<Int32>, rows: Range<Int>, width: Int, scales wScales: UnsafePointer<Float>,
                  sums: UnsafePointer<Int32>, bias: UnsafePointer<Float>?, accumulate: Bool, into y: UnsafeMutablePointer<Float>,
                  stride: Int) {
        for r in rows {
            let source = part + (r - rows.lowerBound) * width, target = y + (r - rows.lowerBound) * stride
            let scale = scales[r], zero = zeros[r]
            var j = 0
            while j + 8 <= width {
                let sum = UnsafeRawPointer(source + j).loadUnaligned(as: SIMD8<Int32>.self)
                let columnSums = UnsafeRawPointer(sums + j).loadUnaligned(as: SIMD8<Int32>.self)
                var v = V(sum &- zero &* columnSums) * (scale * UnsafeRawPointer(wScales + j).loadUnaligned(as: V.self))
                if let bias { v += UnsafeRawPointer(bias + j).loadUnaligned(as: V.self) }
                let out = UnsafeMutableRawPointer(target + j)
                if accumulate { v += out.loadUnaligned(as: V.self) }
                out.storeBytes(of: v, as: V.self)
                j += 8
            }
            for j in j..<width {
                var v = Float(source[j] &- zero &* sums[j]) * (scale * wScales[j])
                if let bias { v += bias[j] }
                target[j] = accumulate ? target[j] + v : v
            }
        }
    }
}
