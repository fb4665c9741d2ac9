import CQuantizedRows
import CSmallProducts

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

    /// The widest vector code the C kernels (`CQuantizedRows`) run here: 2 AVX-512, 1 AVX2, 0 plain C — the CPU's
    /// widest, kept to oneDNN's instruction-set cap (`OneDNN.vectorLanes`). Every level gives the same bytes and
    /// floats (tests run each one the CPU has).
    static let widest: Int32 = {
        let cap: Int32 = switch OneDNN.shared?.vectorLanes ?? 16 { case 16...: 2; case 8..<16: 1; default: 0 }
        return min(mb_quantized_rows_widest(), cap)
    }()

    /// Quantizes x (rows, k) into `out` (rows, k) u8, levels 0…`levels` (255, or 191 where the CPU's int8 dot
    /// products could saturate).
    init(_ x: UnsafePointer<Float>, rows: Int, k: Int, levels: Int32, into out: UnsafeMutablePointer<UInt8>) {
        var scales = [Float](repeating: 1, count: rows), zeros = [Int32](repeating: 0, count: rows)
        scales.withUnsafeMutableBufferPointer { scales in
            zeros.withUnsafeMutableBufferPointer { zeros in
                Parallel.forEach(rows, minimumPerThread: 8) { range in
                    for r in range {
                        mb_quantize_row(Self.widest, x + r * k, Int32(k), Float(levels), out + r * k, scales.baseAddress! + r, zeros.baseAddress! + r)
                    }
                }
            }
        }
        self.scales = scales
        self.zeros = zeros
    }

    /// y[r, j] = (sum[r, j] − zero[r] · Σ wq[j]) · scale[r] · wScale[j] + bias[j] (+ y[r, j] when accumulating),
    /// then GELU (exact erf) of it when `gelu`, for the int32 sums of `rows` (part: (rows.count, width), its first row
    /// that of rows.lowerBound); y (rows.count, width) starts at rows.lowerBound's row, its rows `stride` floats apart.
    func epilogue(_ part: UnsafePointer<Int32>, rows: Range<Int>, width: Int, scales wScales: UnsafePointer<Float>,
                  sums: UnsafePointer<Int32>, bias: UnsafePointer<Float>?, accumulate: Bool, gelu: Bool = false,
                  into y: UnsafeMutablePointer<Float>, stride: Int) {
        scales.withUnsafeBufferPointer { scales in
            zeros.withUnsafeBufferPointer { zeros in
                mb_int8_epilogue(Self.widest, part, Int32(rows.count), Int32(width), Int32(width), scales.baseAddress! + rows.lowerBound,
                                 zeros.baseAddress! + rows.lowerBound, wScales, sums, bias, accumulate, gelu, y, Int32(stride))
            }
        }
    }

    /// The epilogue of `epilogue(…)` as a kernel's parameter (`mb_int8_finish`), for kernels that apply it to their
    /// sums as they go (`mb_panel_product_u8s8_avx2`): every row from the first, y (rows, width) rows `stride` floats
    /// apart, `scales` and `sums` the weights' per column. Valid inside `body` only.
    func withFinish<T>(scales wScales: UnsafePointer<Float>, sums: UnsafePointer<Int32>, bias: UnsafePointer<Float>?,
                       accumulate: Bool, gelu: Bool, into y: UnsafeMutablePointer<Float>, stride: Int,
                       _ body: (UnsafePointer<mb_int8_finish>) -> T) -> T {
        scales.withUnsafeBufferPointer { scales in
            zeros.withUnsafeBufferPointer { zeros in
                var finish = mb_int8_finish(level: Self.widest, scale: scales.baseAddress!, zero: zeros.baseAddress!, wscale: wScales,
                                            colsum: sums, bias: bias, accumulate: accumulate, gelu: gelu, y: y, ldy: Int32(stride))
                return withUnsafePointer(to: &finish, body)
            }
        }
    }
}
