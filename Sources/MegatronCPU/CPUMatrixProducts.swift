import COpenBLAS

/// `MatrixProducts` on OpenBLAS's SGEMM (single-threaded per call, see `Runtime`), c split across cores by rows, or by
/// columns (as the inference products are, `Matmul`) when b lies transposed and c has more columns than rows: the
/// faster split for each of training's shapes, measured on Zen 4 with two cores (1024 × 1024 × 1024 products: rows
/// 182–193 GFLOP/s against columns 156–161; 1024 × 4096 × 1024 with bᵀ, columns 184 against rows 178).
///
/// ```swift
/// let products = CPUMatrixProducts()
/// products.multiply(m: 2, n: 3, k: 4, a, transposeA: false, b, transposeB: true, into: c, alpha: 1, beta: 0)
/// ```
public struct CPUMatrixProducts: MatrixProducts {
    public init() { _ = Runtime.configured }

    public func multiply(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>,
                         transposeB: Bool, into c: UnsafeMutablePointer<Float>, alpha: Float, beta: Float) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {  // no terms: c = β · c
            for i in 0..<(m * n) { c[i] = beta == 0 ? 0 : beta * c[i] }
            return
        }
        let parts = m * n * k >= 1 << 21 ? Parallel.cores : 1
        let lda = transposeA ? m : k, ldb = transposeB ? k : n
        let opA = transposeA ? CblasTrans : CblasNoTrans, opB = transposeB ? CblasTrans : CblasNoTrans
        if !(transposeB && n > m) {
            // Row blocks: each core packs its own rows of op(a) and all of op(b).
            let chunk = (m + parts - 1) / parts
            Parallel.forEach(parts, minimumPerThread: 1) { range in
                for part in range {
                    let start = part * chunk, height = min(chunk, m - start)
                    guard height > 0 else { continue }
                    // Rows start..<start+height of op(a): columns of a when it is read transposed, else its rows.
                    let rows = transposeA ? a + start : a + start * lda
                    cblas_sgemm(CblasRowMajor, opA, opB, Int32(height), Int32(n), Int32(k), alpha, rows, Int32(lda), b, Int32(ldb),
                                beta, c + start * n, Int32(n))
                }
            }
            return
        }
        // Column blocks in multiples of 16 so each core's SGEMM keeps whole micro-tiles.
        let chunk = ((n + parts - 1) / parts + 15) / 16 * 16
        Parallel.forEach(parts, minimumPerThread: 1) { range in
            for part in range {
                let start = part * chunk, width = min(chunk, n - start)
                guard width > 0 else { continue }
                // Columns start..<start+width of op(b): rows of b when it is read transposed, else its columns.
                let columns = transposeB ? b + start * ldb : b + start
                cblas_sgemm(CblasRowMajor, opA, opB, Int32(m), Int32(width), Int32(k), alpha, a, Int32(lda), columns, Int32(ldb),
                            beta, c + start, Int32(n))
            }
        }
    }
}
