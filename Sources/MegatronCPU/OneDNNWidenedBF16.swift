import CDNNL
import CPackedBF16
import Foundation

/// BF16 weights multiplied in FP32: where the CPU's BF16 dot products are slower than its FP32 ones, products of
/// many rows widen the packed BF16 weights (whole, or a slice of columns at a time) into oneDNN's FP32 packed layout
/// in a buffer of the pool that stays in the cache, and run oneDNN's FP32 kernels on them with the FP32 inputs (not
/// rounded to BF16).
/// The weights stay BF16 in memory (half of FP32's), and the products are FP32 products of the BF16 weights: closer
/// to FP32 than BF16 dot products, never further.
///
/// Measured on an Intel Xeon 5th generation whose AMX is not offered (AVX512_BF16 without AMX, 2 cores): oneDNN's
/// BF16 kernel (`brg:avx512_core_bf16`) ran a (512 × 1024) · (1024 × 1024) product in 12.6 ms against 6.7 ms for
/// FP32, and PyTorch's `autocast` BF16 was 0.52× its FP32; on AMD Zen 4 (AVX512_BF16) and on AMX, BF16 is ~2× FP32
/// there, so those keep BF16 dot products.
///
/// ```swift
/// // MEGATRON_BERT_BF16_PRODUCTS=fp32 forces this path, =bf16 BF16 dot products; unset, the CPU decides.
/// // x (512, K) FP32, y (512, N) FP32, bf16Matrix from `pack(_:sourceType: dnnl_bf16, …)`:
/// let done = onednn.multiply(x, rows: 512, matrix: bf16Matrix, bias: b, accumulate: false, into: y)
/// ```
extension OneDNN {
    /// Products of at least this many rows on BF16 weights run in FP32 where `widensBF16`: fewer rows read the
    /// weights from memory once and gain from BF16's half-size reads. Measured on the 345M model there (one process
    /// alternating the two, best passes): 1×16 98 ms widened against 82 ms in BF16, 1×32 136 against 146, 1×128 362
    /// against 553, 32×32 2,419 against 4,202.
    static let widenRows = 32

    /// How BF16 products run on this CPU: in FP32 on widened weights (`true`) or as BF16 dot products. FP32 where
    /// oneDNN's best BF16 kernel here is AVX512_BF16 without AMX on an Intel CPU (see above);
    /// `MEGATRON_BERT_BF16_PRODUCTS` (`fp32` or `bf16`) overrides.
    static func widensBF16(isa: dnnl_cpu_isa_t, vendor: String, setting: String?) -> Bool {
        switch setting?.lowercased() {
        case "fp32": return true
        case "bf16": return false
        default: return isa == dnnl_cpu_isa_avx512_core_bf16 && vendor == "GenuineIntel"
        }
    }

    /// Whether a BF16 matrix packed whole is laid out as `mb_widen_bf16_tiles` reads it: BA16a64b2a (tiles of 32
    /// K-rows × 64 columns, every K tile of a 64-column block before the next block), K padded as FP32's BA16a64b
    /// pads it (to 16; so not when K mod 32 is 1…16, which BF16 pads to 32).
    static func widenable(_ matrix: OneDNNMatrix) -> Bool {
        guard matrix.precision == .bf16, var desc = matrix.whole?.desc, desc.format_kind == dnnl_blocked, desc.ndims == 2,
              desc.offset0 == 0 else { return false }
        let blocking = desc.format_desc.blocking
        let (blocks, indices) = innerBlocking(desc)
        let paddedK = Int(desc.padded_dims.0), paddedN = Int(desc.padded_dims.1)
        return blocks == [16, 64, 2] && indices == [0, 1, 0]
            && Int(blocking.strides.0) == 32 * 64 && Int(blocking.strides.1) == paddedK * 64 && paddedK == (matrix.k + 15) / 16 * 16
            && dnnl_memory_desc_get_size(&desc) == paddedK * paddedN * 2
    }

    /// The largest matrix widened whole (FP32 bytes): the encoder's (the 345M model's largest is 16 MB). Larger ones
    /// (the MLM decoder's 119 MB) go a slice of columns at a time, each core's slice at most a core's share of this.
    /// Every widening takes a buffer of exactly this size (or that share) from the pool, so the pool keeps one of
    /// each, not one per matrix shape (peak RSS: 8×128 1,065 MB with buffers per shape and 32 MB slices).
    static let widenBytes = 16 << 20

    /// y (rows, N) = x (rows, K) · Wᵀ [+ bias] [+ y when accumulating] for a BF16 matrix packed whole, in FP32 on the
    /// weights widened into a buffer of the pool (each core widens its block of columns), then through the FP32
    /// products (`multiply` on an FP32 matrix whose blocks are views into the widened one: rows split between the
    /// cores and y written in place from `rowSplitRows` rows on, column blocks below). A matrix larger than
    /// `widenBytes` goes a slice of columns at a time instead (`multiplySlices`). False when the layout or oneDNN
    /// does not allow it (the caller then multiplies in BF16).
    func multiplyWidened(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, bias: UnsafePointer<Float>?, accumulate: Bool,
                         into y: UnsafeMutablePointer<Float>, activation: Activation? = nil) -> Bool {
        guard let whole = matrix.whole, Self.widenable(matrix) else { return false }
        let paddedK = Int(whole.desc.padded_dims.0), bytes = paddedK * Int(whole.desc.padded_dims.1) * 4
        guard bytes <= Self.widenBytes else {
            guard multiplySlices(x, rows: rows, matrix: matrix, whole: whole, bias: bias, accumulate: accumulate, into: y) else { return false }
            if let activation { activateAfter(y, count: rows * matrix.n, activation) }
            return true
        }
        let widened = BufferPool.shared.take(Self.widenBytes)
        defer { BufferPool.shared.give(widened, Self.widenBytes) }
        // Both layouts keep a 64-column block's tiles together, so each core's block lands at the same tile offset.
        Parallel.forEach(matrix.blocks.count, minimumPerThread: 1) { range in
            for index in range {
                let columns = matrix.blocks[index].columns, firstTile = columns.lowerBound / 64 * (paddedK / 16)
                mb_widen_bf16_tiles(1, whole.data.assumingMemoryBound(to: UInt16.self) + firstTile * 1024, (columns.count + 63) / 64 * (paddedK / 16),
                                    widened.assumingMemoryBound(to: Float.self) + firstTile * 1024)
            }
        }
        let fp32 = OneDNNMatrix.Block(columns: 0..<matrix.n, desc: Self.fp32Tiles(k: matrix.k, n: matrix.n), data: widened)
        guard let views = Self.views(of: fp32, columns: matrix.blocks.map(\.columns), type: dnnl_f32) else { return false }
        let product = OneDNNMatrix(n: matrix.n, k: matrix.k, precision: .widenedBF16, blocks: views, whole: fp32, memories: [])
        return multiply(x, rows: rows, matrix: product, bias: bias, accumulate: accumulate, into: y, activation: activation)
    }

    /// `multiplyWidened` for a matrix too large to widen whole: in steps, each core widening the next slice of its
    /// block of columns (its share of `widenBytes`) into a buffer of its own, then the slices multiplied as the column
    /// blocks of an FP32 matrix (`multiplyByColumns`).
    private func multiplySlices(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, whole: OneDNNMatrix.Block,
                                bias: UnsafePointer<Float>?, accumulate: Bool, into y: UnsafeMutablePointer<Float>) -> Bool {
        let paddedK = Int(whole.desc.padded_dims.0)
        let sliceBytes = max(Self.widenBytes / max(matrix.blocks.count, 1), paddedK * 64 * 4)
        let sliceColumns = sliceBytes / (paddedK * 4) / 64 * 64
        let buffers = matrix.blocks.map { _ in BufferPool.shared.take(sliceBytes) }
        defer { for buffer in buffers { BufferPool.shared.give(buffer, sliceBytes) } }
        let steps = matrix.blocks.map { ($0.columns.count + sliceColumns - 1) / sliceColumns }.max() ?? 0
        for step in 0..<steps {
            // Per core: its slice for this step (none once its block is done) and the buffer it is widened into.
            let slices = zip(matrix.blocks, buffers).compactMap { block, buffer -> OneDNNMatrix.Block? in
                let start = block.columns.lowerBound + step * sliceColumns
                guard start < block.columns.upperBound else { return nil }
                let columns = start..<min(start + sliceColumns, block.columns.upperBound)
                return OneDNNMatrix.Block(columns: columns, desc: Self.fp32Tiles(k: matrix.k, n: columns.count), data: buffer)
            }
            Parallel.forEach(slices.count, minimumPerThread: 1) { range in
                for slice in slices[range] {
                    mb_widen_bf16_tiles(1, whole.data.assumingMemoryBound(to: UInt16.self) + slice.columns.lowerBound / 64 * paddedK * 64,
                                        (slice.columns.count + 63) / 64 * (paddedK / 16), slice.data.assumingMemoryBound(to: Float.self))
                }
            }
            let product = OneDNNMatrix(n: matrix.n, k: matrix.k, precision: .widenedBF16, blocks: slices, whole: nil, memories: [])
            guard multiplyByColumns(x, rows: rows, matrix: product, bias: bias, accumulate: accumulate, into: y) else { return false }
        }
        return true
    }

    /// The (K, N) FP32 layout the widened tiles are in: BA16a64b.
    static func fp32Tiles(k: Int, n: Int) -> dnnl_memory_desc_t {
        var desc = dnnl_memory_desc_t()
        var dims: [dnnl_dim_t] = [dnnl_dim_t(k), dnnl_dim_t(n)]
        _ = dnnl_memory_desc_init_by_tag(&desc, 2, &dims, dnnl_f32, dnnl_BA16a64b)
        return desc
    }
}
