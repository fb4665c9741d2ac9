import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide settings the engine needs, applied once before the first model is built.
enum Runtime {
    static let configured: Void = {
        // OpenBLAS runs single-threaded and we split each product across cores ourselves: its own threads
        // spin-wait between calls and fight the Dispatch workers that run the other kernels (measured: over a
        // third of the time lost to sched_yield on 2 cores).
        openblas_set_num_threads(1)
        #if canImport(Glibc)
        // Activations of 1 MB and more come from mmap and go back to the system when freed. glibc's default
        // raises this threshold after the first large free, and then each forward pass leaves its tensors
        // scattered through the heap: peak RSS grew by ~1 GB over a few 8x128 passes.
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 20)
        #endif
    }()
}

#if canImport(Glibc)
/// glibc's `int mallopt(int, int)` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
