import COpenBLAS

/// Matrix products on OpenBLAS. OpenBLAS runs single-threaded and we split each product across
/// cores ourselves: OpenBLAS's own threads spin-wait between calls and fight the Dispatch workers that
/// run the other kernels (measured: over a third of the time lost to sched_yield on 2 cores).
enum Matmul {
    /// Call before any product: pins OpenBLAS to one thread per call (process-wide).
    static let singleThreadedBLAS: Void = openblas_set_num_threads(1)

    /// C (m, n) = alpha · A (m, k) · B(n, k)ᵀ + beta · C, row-major with leading dimensions, split by
    /// columns of C across cores when the product is large enough to pay for it.
    static func multiplyTransposed(m: Int, n: Int, k: Int, alpha: Float = 1,
                                   _ a: UnsafePointer<Float>, lda: Int,
                                   _ b: UnsafePointer<Float>, ldb: Int, beta: Float,
                                   _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = singleThreadedBLAS
        let work = m * n * k
        let parts = work >= 1 << 21 ? Parallel.cores : 1
        // Column blocks in multiples of 16 so each core's SGEMM keeps whole micro-tiles.
        let chunk = ((n + parts - 1) / parts + 15) / 16 * 16
        Parallel.forEach(parts, minimumPerThread: 1) { range in
            for part in range {
                let start = part * chunk
                let width = min(chunk, n - start)
                guard width > 0 else { continue }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(width), Int32(k),
                            alpha, a, Int32(lda), b + start * ldb, Int32(ldb), beta, c + start, Int32(ldc))
            }
        }
    }
}
