import COpenBLAS

/// Matrix products on OpenBLAS, single-threaded per call (see `Runtime`), split across cores here.
enum Matmul {
    /// C (m, n) = A (m, k) · B(n, k)ᵀ [+ bias (n)] [+ C when `accumulate`], row-major with leading
    /// dimensions, split by columns of C across cores when the product is large enough to pay for it.
    /// Each core writes the bias into its own columns first, so that pass is parallel and cache-warm.
    static func multiplyTransposed(m: Int, n: Int, k: Int,
                                   _ a: UnsafePointer<Float>, lda: Int,
                                   _ b: UnsafePointer<Float>, ldb: Int,
                                   bias: UnsafePointer<Float>?, accumulate: Bool,
                                   _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        let parts = m * n * k >= 1 << 21 ? Parallel.cores : 1
        // Column blocks in multiples of 16 so each core's SGEMM keeps whole micro-tiles.
        let chunk = ((n + parts - 1) / parts + 15) / 16 * 16
        Parallel.forEach(parts, minimumPerThread: 1) { range in
            for part in range {
                let start = part * chunk
                let width = min(chunk, n - start)
                guard width > 0 else { continue }
                multiplyBlock(m: m, columns: start..<(start + width), k: k, a, lda: lda, b + start * ldb, ldb: ldb,
                              bias: bias, accumulate: accumulate, c, ldc: ldc)
            }
        }
    }

    /// One core's share: columns `columns` of C; `rowsOfB` points at B's row `columns.lowerBound`.
    @inline(__always)
    static func multiplyBlock(m: Int, columns: Range<Int>, k: Int,
                              _ a: UnsafePointer<Float>, lda: Int,
                              _ rowsOfB: UnsafePointer<Float>, ldb: Int,
                              bias: UnsafePointer<Float>?, accumulate: Bool,
                              _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        let start = columns.lowerBound, width = columns.count
        if let bias {
            for row in 0..<m {
                let out = c + row * ldc + start
                if accumulate {
                    for j in 0..<width { out[j] += bias[start + j] }
                } else {
                    out.update(from: bias + start, count: width)
                }
            }
        }
        let beta: Float = bias != nil || accumulate ? 1 : 0
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(width), Int32(k),
                    1, a, Int32(lda), rowsOfB, Int32(ldb), beta, c + start, Int32(ldc))
    }
}
