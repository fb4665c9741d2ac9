import CDNNL
import CSmallProducts
import Foundation

/// Products of few rows on weights oneDNN packed, through our own AVX-512 kernels: memory-bound there, and oneDNN's
/// kernels read the packed weights at ~11 GB/s per core where plain reads reach ~15. The kernels read the same packed
/// layouts (per 64 columns, every K step's 64 weights contiguous: FP32 BA16a64b, int8 BA16a64b4a), each weight once,
/// prefetched into L2 ahead of the FMAs. FP32 (`mb_panel_product_f32`) writes y in place (bias and accumulation
/// fused; no dense buffer and epilogue); int8 (`mb_panel_product_u8s8`, VNNI) writes the int32 sums that oneDNN's
/// kernel would, for the same epilogue.
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
    /// FP32 products of at most this many rows on panel-packed weights run through `mb_panel_product_f32`; more rows
    /// are compute-bound, where oneDNN's kernel reaches more of the FMA units' peak.
    static let panelRows = 32

    /// Whether the panel kernel runs here: an AVX-512 CPU, and not turned off (`MEGATRON_BERT_PANEL_PRODUCTS=0`).
    static let panelProducts = mb_panel_products_available()
        && ProcessInfo.processInfo.environment["MEGATRON_BERT_PANEL_PRODUCTS"] != "0"

    /// Whether the int8 panel kernel runs here: AVX-512 with VNNI, and not turned off.
    static let panelProductsInt8 = panelProducts && mb_panel_products_int8_available()

    /// The distance in elements between consecutive 64-column panels of a packed block, when its layout is the one
    /// the panel kernels read, else nil: FP32 BA16a64b (16 × 64 tiles, every K tile of a 64-column block before the
    /// next block, K padded to 16); int8 BA16a64b4a (64 × 64 tiles, K in quads, K padded to 64).
    static func panelStride(_ block: OneDNNMatrix.Block, k: Int) -> Int? {
        var desc = block.desc
        guard desc.format_kind == dnnl_blocked, desc.ndims == 2, desc.offset0 == 0, Int(bitPattern: block.data) % 64 == 0
        else { return nil }
        let blocking = desc.format_desc.blocking
        let count = Int(blocking.inner_nblks)
        let blocks = withUnsafeBytes(of: blocking.inner_blks) { Array($0.bindMemory(to: dnnl_dim_t.self).prefix(count)) }
        let indices = withUnsafeBytes(of: blocking.inner_idxs) { Array($0.bindMemory(to: dnnl_dim_t.self).prefix(count)) }
        let (kTile, size): (Int, Int)
        switch desc.data_type {
        case dnnl_f32 where blocks == [16, 64] && indices == [0, 1]: (kTile, size) = (16, 4)
        case dnnl_s8 where blocks == [16, 64, 4] && indices == [0, 1, 0] && k % 4 == 0: (kTile, size) = (64, 1)
        default: return nil
        }
        let paddedK = Int(desc.padded_dims.0), paddedN = Int(desc.padded_dims.1)
        guard paddedK == (k + kTile - 1) / kTile * kTile, Int(blocking.strides.0) == kTile * 64,
              Int(blocking.strides.1) == paddedK * 64, paddedN % 64 == 0,
              dnnl_memory_desc_get_size(&desc) == paddedK * paddedN * size else { return nil }
        return paddedK * 64
    }

    /// The panel stride of a matrix whose every block is panel-packed (FP32 packed whole and int8; not widened BF16),
    /// else nil.
    static func panelStride(of blocks: [OneDNNMatrix.Block], whole: OneDNNMatrix.Block?, k: Int,
                            precision: OneDNNMatrix.Precision) -> Int? {
        switch precision {
        case .fp32: return whole.flatMap { panelStride($0, k: k) }
        case .int8:
            let strides = blocks.map { panelStride($0, k: k) }
            guard let first = strides.first, let stride = first, strides.allSatisfy({ $0 == stride }) else { return nil }
            return stride
        default: return nil
        }
    }

    /// `multiply` for few rows on panel-packed FP32 weights: each core its block of columns, written into y in place.
    /// False when the matrix is not panel-packed or the rows are too many (the caller goes on to oneDNN).
    func multiplyPanels(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, bias: UnsafePointer<Float>?,
                        accumulate: Bool, into y: UnsafeMutablePointer<Float>) -> Bool {
        guard Self.panelProducts, matrix.precision == .fp32, rows <= Self.panelRows, let stride = matrix.panelStride
        else { return false }
        noteUsed("panel:avx512")
        let k = matrix.k, n = matrix.n
        Parallel.forEach(matrix.blocks.count, minimumPerThread: 1) { range in
            for index in range {
                let block = matrix.blocks[index], first = block.columns.lowerBound
                mb_panel_product_f32(x, Int32(rows), Int32(k), block.data.assumingMemoryBound(to: Float.self), stride,
                                     Int32(block.columns.count), bias.map { $0 + first }, accumulate, y + first, n)
            }
        }
        return true
    }
}
