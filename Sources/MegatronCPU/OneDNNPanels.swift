import CDNNL
import CSmallProducts
import Foundation

/// Products of few rows on weights oneDNN packed, through our own AVX-512 kernels: memory-bound there, and oneDNN's
/// kernels read the packed weights at ~11 GB/s per core where plain reads reach ~15. The kernels read the same packed
/// layouts (per 64 columns, every K step's 64 weights contiguous: FP32 BA16a64b, BF16 BA16a64b2a, int8 BA16a64b4a),
/// each weight once, prefetched into L2 ahead of the arithmetic. FP32 (`mb_panel_product_f32`) and BF16 (widened to
/// FP32 in registers, `mb_panel_product_bf16_widened`, or as BF16 dot products, `mb_panel_product_bf16`) write y in
/// place (bias and accumulation fused; no dense buffer and epilogue); int8 (`mb_panel_product_u8s8`, VNNI) writes the
/// int32 sums that oneDNN's kernel would, for the same epilogue.
///
/// Measured on the 345M model's 1×8 products (Intel Xeon 5th generation, 2 cores, AVX-512; per pass, per core, from
/// `ONEDNN_VERBOSE`): oneDNN's `brg:avx512_core` 60 ms of products against 42–44 ms for pure reads of the same
/// weights (`scripts/read_bandwidth.c … pass`); this kernel in a scratch harness on the same matrices 48–50 ms.
///
/// ```swift
/// // MEGATRON_BERT_PANEL_PRODUCTS=0 turns this path off (oneDNN's kernel for every row count).
/// // x (8, 1024) FP32, y (8, 4096), matrix packed by `pack(_:sourceType: dnnl_f32, …)`:
/// let done = onednn.multiply(x, rows: 8, matrix: matrix, bias: b, accumulate: false, into: y)  // the panel kernel
/// ```
extension OneDNN {
    /// Products of at most this many rows on panel-packed weights run through the panel kernels; more rows are
    /// compute-bound, where oneDNN's kernels reach more of the FMA units' peak. Measured on the 345M model in FP32
    /// (kernels on / off, medians): 16 rows 71 against 83 ms, 24 rows 90 against 100–106, 32 rows 110–114 against
    /// 122–124, 48 and 64 rows level.
    static let panelRows = Int(MB_PANEL_ROWS)

    /// Whether the panel kernel runs here: an AVX-512 CPU, and not turned off (`MEGATRON_BERT_PANEL_PRODUCTS=0`).
    static let panelProducts = mb_panel_products_available()
        && Settings.current[.panelProducts] != "0"

    /// Whether oneDNN multiplies int8 and BF16 with AMX here: its tiles outrun any vector kernel once a product has a
    /// few rows, and the panel kernels were not measured against them, so int8 and BF16 products stay with oneDNN
    /// there (FP32 has no AMX: its panels run everywhere on AVX-512).
    static let onAMX = shared?.isa == dnnl_cpu_isa_avx512_core_amx
    /// Whether the int8 panel kernel runs here: AVX-512 with VNNI (the CPU's, and oneDNN's under its cap,
    /// `DNNL_MAX_CPU_ISA`), no AMX, and not turned off.
    static let panelProductsInt8 = panelProducts && !onAMX && shared?.hasVNNI == true && mb_panel_products_int8_available()
    /// Whether the BF16 dot-product panel kernel runs here: AVX-512 with AVX512_BF16 (the CPU's, and oneDNN's under
    /// its cap), no AMX, and not turned off.
    static let panelProductsBF16 = panelProducts && !onAMX && shared?.hasBFloat16 == true && mb_panel_products_bf16_available()

    /// The distance in elements between consecutive 64-column panels of a packed block, when its layout is the one
    /// the panel kernels read, else nil: FP32 BA16a64b (16 × 64 tiles, every K tile of a 64-column block before the
    /// next block, K padded to 16); BF16 BA16a64b2a (32 × 64 tiles, K in pairs, K padded to 32); int8 BA16a64b4a
    /// (64 × 64 tiles, K in quads, K padded to 64; the VNNI kernel needs K a multiple of 4, the AVX2 one does not).
    static func panelStride(_ block: OneDNNMatrix.Block, k: Int) -> Int? {
        var desc = block.desc
        guard desc.format_kind == dnnl_blocked, desc.ndims == 2, desc.offset0 == 0, Int(bitPattern: block.data) % 64 == 0
        else { return nil }
        let blocking = desc.format_desc.blocking
        let (blocks, indices) = innerBlocking(desc)
        let (kTile, size): (Int, Int)
        switch desc.data_type {
        case dnnl_f32 where blocks == [16, 64] && indices == [0, 1]: (kTile, size) = (16, 4)
        case dnnl_bf16 where blocks == [16, 64, 2] && indices == [0, 1, 0] && k % 2 == 0: (kTile, size) = (32, 2)
        case dnnl_s8 where blocks == [16, 64, 4] && indices == [0, 1, 0]: (kTile, size) = (64, 1)
        default: return nil
        }
        let paddedK = Int(desc.padded_dims.0), paddedN = Int(desc.padded_dims.1)
        guard paddedK == (k + kTile - 1) / kTile * kTile, Int(blocking.strides.0) == kTile * 64,
              Int(blocking.strides.1) == paddedK * 64, paddedN % 64 == 0,
              dnnl_memory_desc_get_size(&desc) == paddedK * paddedN * size else { return nil }
        return paddedK * 64
    }

    /// The panel stride of a matrix whose every block is panel-packed (FP32 and BF16 packed whole, int8 per block;
    /// not widened BF16), else nil.
    static func panelStride(of blocks: [OneDNNMatrix.Block], whole: OneDNNMatrix.Block?, k: Int,
                            precision: OneDNNMatrix.Precision) -> Int? {
        switch precision {
        case .fp32, .bf16: return whole.flatMap { panelStride($0, k: k) }
        case .int8:
            let strides = blocks.map { panelStride($0, k: k) }
            guard let first = strides.first, let stride = first, strides.allSatisfy({ $0 == stride }) else { return nil }
            return stride
        default: return nil
        }
    }

    /// `multiply` for few rows on panel-packed FP32 or BF16 weights: each core its block of columns, written into y
    /// in place. BF16 weights are widened to FP32 in registers where `widenBF16` (as `multiplyWidened` does for
    /// many rows), else multiplied as BF16 dot products with x rounded to BF16. False when the matrix is not
    /// panel-packed, the rows are too many or the kernel does not run here (the caller goes on to oneDNN).
    func multiplyPanels(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, bias: UnsafePointer<Float>?,
                        accumulate: Bool, into y: UnsafeMutablePointer<Float>, widenBF16: Bool) -> Bool {
        guard rows <= Self.panelRows, let stride = matrix.panelStride else { return false }
        let k = matrix.k, n = matrix.n
        // Each core's block: (its data, its first column, its width) → the kernel writes y's columns in place.
        let run: (UnsafeMutableRawPointer, Int, Int) -> Void
        var rounded: (buffer: UnsafeMutableRawPointer, bytes: Int)?
        defer { if let rounded { BufferPool.shared.give(rounded.buffer, rounded.bytes) } }
        switch matrix.precision {
        case .fp32 where Self.panelProducts:
            noteUsed("panel:avx512")
            run = { data, first, width in
                mb_panel_product_f32(x, Int32(rows), Int32(k), data.assumingMemoryBound(to: Float.self), stride, Int32(width),
                                     bias.map { $0 + first }, accumulate, y + first, n)
            }
        case .bf16 where widenBF16 && Self.panelProducts:
            // FP32 products of the BF16 weights, widened in registers (`mb_panel_product_bf16_widened`).
            noteUsed("fp32-on-bf16:panel:avx512")
            run = { data, first, width in
                mb_panel_product_bf16_widened(x, Int32(rows), Int32(k), data.assumingMemoryBound(to: UInt16.self), stride,
                                              Int32(width), bias.map { $0 + first }, accumulate, y + first, n)
            }
        case .bf16 where !widenBF16 && Self.panelProductsBF16:
            noteUsed("panel:avx512_bf16")
            let bytes = rows * k * 2, buffer = BufferPool.shared.take(bytes)
            rounded = (buffer, bytes)
            let input = buffer.assumingMemoryBound(to: UInt16.self)
            Self.roundToBFloat16(x, into: input, count: rows * k)
            run = { data, first, width in
                mb_panel_product_bf16(input, Int32(rows), Int32(k), data.assumingMemoryBound(to: UInt16.self), stride, Int32(width),
                                      bias.map { $0 + first }, accumulate, y + first, n)
            }
        default: return false
        }
        Parallel.forEach(matrix.blocks.count, minimumPerThread: 1) { range in
            for index in range {
                let block = matrix.blocks[index]
                run(block.data, block.columns.lowerBound, block.columns.count)
            }
        }
        return true
    }

    /// `multiply` for int8 matrices in the panels we packed for AVX2 (`packsInt8Panels`): x quantized per row, then
    /// each core its block of columns through `mb_panel_product_u8s8_avx2`, every row at once (the kernel blocks the
    /// rows itself), the epilogue fused, into y in place: no buffer of int32 sums, no primitives.
    func multiplyInt8PanelsAVX2(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, stride: Int,
                                bias: UnsafePointer<Float>?, accumulate: Bool, into y: UnsafeMutablePointer<Float>, gelu: Bool) {
        noteUsed("panel:avx2_int8")
        let k = matrix.k, bytes = max(rows * k, 64), buffer = BufferPool.shared.take(bytes)
        defer { BufferPool.shared.give(buffer, bytes) }
        let input = buffer.assumingMemoryBound(to: UInt8.self)
        let quantized = QuantizedRows(x, rows: rows, k: k, levels: inputLevels, into: input)
        matrix.scales.withUnsafeBufferPointer { scales in
            matrix.sums.withUnsafeBufferPointer { sums in
                Parallel.forEach(matrix.blocks.count, minimumPerThread: 1) { range in
                    for index in range {
                        let block = matrix.blocks[index], first = block.columns.lowerBound
                        quantized.withFinish(scales: scales.baseAddress! + first, sums: sums.baseAddress! + first,
                                             bias: bias.map { $0 + first }, accumulate: accumulate, gelu: gelu,
                                             into: y + first, stride: matrix.n) { finish in
                            mb_panel_product_u8s8_avx2(input, Int32(rows), Int32(k), block.data.assumingMemoryBound(to: Int8.self),
                                                       stride, Int32(block.columns.count), finish, nil, 0)
                        }
                    }
                }
            }
        }
    }
}
