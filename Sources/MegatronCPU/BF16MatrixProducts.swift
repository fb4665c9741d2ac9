import CDNNL
import COpenBLAS
import CPackedBF16
import Foundation
import MegatronBackend

/// `MatrixProducts` with BF16 dot products, as `torch.autocast("cpu", dtype=torch.bfloat16)` runs a linear layer: both
/// operands rounded to BF16 (to nearest even), multiplied and summed in FP32 by oneDNN's AVX512_BF16 or AMX kernels,
/// the result FP32. Products too small to gain (under 2²¹ multiply-adds: attention's per-head products) or with an α
/// other than 1 run in FP32 (`CPUMatrixProducts`). The rows of c are split across cores, each core's oneDNN call on
/// one thread.
///
/// ```swift
/// let products = try BF16MatrixProducts()  // throws where the CPU has no BF16 dot products
/// products.multiply(m: 512, n: 1024, k: 1024, x, transposeA: false, w, transposeB: true, into: y, alpha: 1, beta: 0)
/// ```
public struct BF16MatrixProducts: MatrixProducts {
    let onednn: OneDNN
    let fp32 = CPUMatrixProducts()
    /// Products with fewer multiply-adds run in FP32.
    static let minimumWork = 1 << 21
    public var precision: String { "bf16" }

    /// - Throws: `BackendError` where this CPU (or oneDNN's cap, `DNNL_MAX_CPU_ISA`) has no BF16 dot products.
    public init() throws {
        guard let onednn = OneDNN.shared, onednn.hasBFloat16 else {
            throw BackendError("BF16 products need a CPU with BF16 dot products (AVX512_BF16 or AMX); this one has \(OneDNN.shared?.isaName ?? "no oneDNN"): train in FP32 (leave out --bf16)")
        }
        self.onednn = onednn
    }

    public func multiply(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>,
                         transposeB: Bool, into c: UnsafeMutablePointer<Float>, alpha: Float, beta: Float) {
        guard alpha == 1, beta == 0 || beta == 1, m * n * k >= Self.minimumWork else {
            return fp32.multiply(m: m, n: n, k: k, a, transposeA: transposeA, b, transposeB: transposeB, into: c, alpha: alpha, beta: beta)
        }
        // Both operands in BF16. b as it lies ((k, n) or (n, k)), rounded here on every core; a by each core for its
        // own rows of op(a), inside the loop below: rows of a (m, k), or — when a lies transposed (k, m), as dy does in
        // the weight gradient dyᵀ·x — its columns, written transposed so that oneDNN reads a plain (rows, k) block
        // (its fast BF16 kernels take no strided source; measured 175–199 against 210–219 GFLOP/s per core).
        let bBytes = k * n * 2
        let b16 = BufferPool.shared.take(bBytes).bindMemory(to: UInt16.self, capacity: k * n)
        defer { BufferPool.shared.give(UnsafeMutableRawPointer(b16), bBytes) }
        OneDNN.roundToBFloat16(b, into: b16, count: k * n)
        // One block of rows of c per core (each core reads all of op(b) and its own rows of op(a): measured faster than
        // blocks of columns, as for FP32), each a oneDNN matmul on one thread (made once per shape, then cached).
        let parts = Parallel.cores
        let chunk = (m + parts - 1) / parts
        var blocks: [(start: Int, height: Int, primitive: OneDNN.Primitive, descs: [dnnl_memory_desc_t])] = []
        for start in stride(from: 0, to: m, by: chunk) {
            let height = min(chunk, m - start)
            let descs = [OneDNN.plain(height, k, dnnl_bf16),
                         transposeB ? OneDNN.transposed(k, n, dnnl_bf16) : OneDNN.plain(k, n, dnnl_bf16),
                         OneDNN.plain(height, n, dnnl_f32)]
            let key = OneDNN.Key.generalBF16(m: height, n: n, k: k, transposeB: transposeB, accumulate: beta == 1)
            guard let primitive = onednn.primitive(key, describe: { attr in
                var (source, weights, output) = (descs[0], descs[1], descs[2])
                if beta == 1 {  // c += a·b: oneDNN's sum post-op
                    var postOps: dnnl_post_ops_t?
                    guard dnnl_post_ops_create(&postOps) == dnnl_success, let postOps else { return nil }
                    defer { dnnl_post_ops_destroy(postOps) }
                    guard dnnl_post_ops_append_sum(postOps, 1) == dnnl_success,
                          dnnl_primitive_attr_set_post_ops(attr, postOps) == dnnl_success else { return nil }
                }
                var desc = dnnl_matmul_desc_t()
                var pd: dnnl_primitive_desc_t?
                guard dnnl_matmul_desc_init(&desc, &source, &weights, nil, &output) == dnnl_success,
                      dnnl_primitive_desc_create(&pd, &desc, attr, onednn.engine, nil) == dnnl_success else { return nil }
                return pd
            }) else {  // oneDNN has no fast kernel for this shape: FP32, before anything is written
                return fp32.multiply(m: m, n: n, k: k, a, transposeA: transposeA, b, transposeB: transposeB, into: c, alpha: alpha, beta: beta)
            }
            blocks.append((start, height, primitive, descs))
        }
        Parallel.forEach(blocks.count, minimumPerThread: 1) { range in
            for (start, height, primitive, descs) in blocks[range] {
                let aBytes = height * k * 2
                let rows = BufferPool.shared.take(aBytes)
                defer { BufferPool.shared.give(rows, aBytes) }
                let rows16 = rows.bindMemory(to: UInt16.self, capacity: height * k)
                if transposeA {  // op(a)'s rows start..<start+height: columns of a (k, m)
                    mb_round_bf16_transposed(a + start, k, height, m, rows16, k)
                } else {
                    OneDNN.roundToBFloat16(a + start * k, into: rows16, count: height * k, parallel: false)
                }
                let done = onednn.execute(primitive, [(DNNL_ARG_SRC, descs[0], rows),
                                                      (DNNL_ARG_WEIGHTS, descs[1], UnsafeMutableRawPointer(b16)),
                                                      (DNNL_ARG_DST, descs[2], UnsafeMutableRawPointer(c + start * n))])
                guard !done else { continue }
                // oneDNN failed to run (it does not write then): these rows in FP32.
                let lda = transposeA ? m : k, ldb = transposeB ? k : n
                cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                            Int32(height), Int32(n), Int32(k), 1, transposeA ? a + start : a + start * lda, Int32(lda),
                            b, Int32(ldb), beta, c + start * n, Int32(n))
            }
        }
    }
}
