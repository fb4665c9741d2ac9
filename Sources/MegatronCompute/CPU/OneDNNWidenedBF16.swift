import CDNNL
import CPackedBF16
import Foundation

/// BF16 weights multiplied in FP32: where the CPU's BF16 dot products are slower than its FP32 ones, products of
/// many rows widen the packed BF16 weights, a slice of columns at a time, into oneDNN's FP32 packed layout in a
/// buffer that stays in cache, and run oneDNN's FP32 kernel on them with the FP32 inputs (not rounded to BF16).
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
/// let y = ... onednn.multiply(x, rows: 512, matrix: bf16Matrix, ...)   // x (512, K) FP32, y (512, N) FP32
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

    /// The CPU's vendor string from /proc/cpuinfo, e.g. "GenuineIntel", "AuthenticAMD" ("" when unknown).
    static let cpuVendor: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("vendor_id") }) else { return "" }
        return line.split(separator: ":").dropFirst().joined(separator: ":").trimmingCharacters(in: .whitespaces)
    }()

    /// Whether a BF16 matrix packed whole is laid out as `mb_widen_bf16_tiles` reads it: BA16a64b2a (tiles of 32
    /// K-rows × 64 columns, every K tile of a 64-column block before the next block), K padded as FP32's BA16a64b
    /// pads it (to 16; so not when K mod 32 is 1…16, which BF16 pads to 32).
    static func widenable(_ matrix: OneDNNMatrix) -> Bool {
        guard matrix.precision == .bf16, var desc = matrix.whole?.desc, desc.format_kind == dnnl_blocked, desc.ndims == 2,
              desc.offset0 == 0 else { return false }
        let blocking = desc.format_desc.blocking
        let blocks = withUnsafeBytes(of: blocking.inner_blks) { Array($0.bindMemory(to: dnnl_dim_t.self).prefix(3)) }
        let indices = withUnsafeBytes(of: blocking.inner_idxs) { Array($0.bindMemory(to: dnnl_dim_t.self).prefix(3)) }
        let paddedK = Int(desc.padded_dims.0), paddedN = Int(desc.padded_dims.1)
        return blocking.inner_nblks == 3 && blocks == [16, 64, 2] && indices == [0, 1, 0]
            && Int(blocking.strides.0) == 32 * 64 && Int(blocking.strides.1) == paddedK * 64 && paddedK == (matrix.k + 15) / 16 * 16
            && dnnl_memory_desc_get_size(&desc) == paddedK * paddedN * 2
    }

    /// Columns widened at a time: as many 64-column blocks as fit `widenBytes` of FP32 (at least one).
    static let widenBytes = 8 << 20

    /// y (rows, N) = x (rows, K) · Wᵀ [+ bias] [+ y when accumulating] for a BF16 matrix packed whole, in FP32 on the
    /// weights widened slice by slice: each core its block of columns, each slice widened once into a buffer of the
    /// pool, then the rows in chunks (`chunk(rows:width:precision:)`) through oneDNN's FP32 kernel into a dense
    /// buffer that the epilogue moves into y. False when the layout or oneDNN does not allow it (the caller then
    /// multiplies in BF16).
    func multiplyWidened(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, bias: UnsafePointer<Float>?, accumulate: Bool,
                         into y: UnsafeMutablePointer<Float>) -> Bool {
        guard let whole = matrix.whole, Self.widenable(matrix) else { return false }
        let k = matrix.k, paddedK = Int(whole.desc.padded_dims.0)
        let sliceColumns = max(64, Self.widenBytes / (paddedK * 4) / 64 * 64)
        let failures = ManagedAtomicFlag()
        Parallel.forEach(matrix.blocks.count, minimumPerThread: 1) { range in
            for index in range {
                let block = matrix.blocks[index]
                let slices = stride(from: block.columns.lowerBound, to: block.columns.upperBound, by: sliceColumns)
                    .map { $0..<min($0 + sliceColumns, block.columns.upperBound) }
                for columns in slices {
                    // The slice's tiles: whole 64-column blocks of every K tile (the last block zero-padded, as packed).
                    let tiles = (columns.count + 63) / 64 * (paddedK / 16)
                    let widenedBytes = tiles * 1024 * 4
                    let widened = BufferPool.shared.take(widenedBytes)
                    defer { BufferPool.shared.give(widened, widenedBytes) }
                    let source = whole.data.assumingMemoryBound(to: UInt16.self) + columns.lowerBound / 64 * paddedK * 64
                    mb_widen_bf16_tiles(1, source, tiles, widened.assumingMemoryBound(to: Float.self))
                    guard self.multiplyWidenedSlice(x, rows: rows, k: k, columns: columns, weights: widened, n: matrix.n, bias: bias,
                                                    accumulate: accumulate, into: y) else {
                        failures.set()
                        return
                    }
                }
            }
        }
        return !failures.isSet
    }

    /// One slice of columns: the rows in chunks through the FP32 primitive for weights in BA16a64b.
    private func multiplyWidenedSlice(_ x: UnsafePointer<Float>, rows: Int, k: Int, columns: Range<Int>, weights: UnsafeMutableRawPointer,
                                      n: Int, bias: UnsafePointer<Float>?, accumulate: Bool, into y: UnsafeMutablePointer<Float>) -> Bool {
        let width = columns.count
        let chunk = Self.chunk(rows: rows, width: width, precision: .bf16), last = rows - (rows - 1) / chunk * chunk
        let weightsDesc = Self.fp32Tiles(k: k, n: width)
        guard let full = widenedPrimitive(rows: chunk, columns: width, k: k, weights: weightsDesc),
              let short = last == chunk ? full : widenedPrimitive(rows: last, columns: width, k: k, weights: weightsDesc) else { return false }
        let partBytes = max(chunk * width * 4, 64)
        let part = BufferPool.shared.take(partBytes)
        defer { BufferPool.shared.give(part, partBytes) }
        var first = 0
        while first < rows {
            let count = min(chunk, rows - first)
            guard execute(count == chunk ? full : short,
                          [(DNNL_ARG_SRC, Self.plain(count, k, dnnl_f32), UnsafeMutableRawPointer(mutating: x + first * k)),
                           (DNNL_ARG_WEIGHTS, weightsDesc, weights),
                           (DNNL_ARG_DST, Self.plain(count, width, dnnl_f32), part)]) else { return false }
            Self.epilogue(part.assumingMemoryBound(to: Float.self), rows: count, width: width, bias: bias.map { $0 + columns.lowerBound },
                          accumulate: accumulate, into: y + first * n + columns.lowerBound, stride: n)
            first += count
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

    /// The cached FP32 product primitive on BA16a64b weights (dense FP32 output); nil when oneDNN has no fast kernel.
    private func widenedPrimitive(rows: Int, columns: Int, k: Int, weights: dnnl_memory_desc_t) -> Primitive? {
        primitive(.matmulWidened(rows: rows, columns: columns, k: k)) { attr in
            var source = Self.plain(rows, k, dnnl_f32), output = Self.plain(rows, columns, dnnl_f32), weights = weights
            var desc = dnnl_matmul_desc_t()
            var pd: dnnl_primitive_desc_t?
            guard dnnl_matmul_desc_init(&desc, &source, &weights, nil, &output) == dnnl_success,
                  dnnl_primitive_desc_create(&pd, &desc, attr, engine, nil) == dnnl_success else { return nil }
            return pd
        }
    }
}
