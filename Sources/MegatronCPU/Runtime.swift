import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide settings the engine needs, applied once before the first model is built.
public enum Runtime {
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

    /// The kernels OpenBLAS chose for this CPU (`openblas_get_corename`).
    public static var openBLASCore: String { String(cString: openblas_get_corename()) }

    /// A better OpenBLAS kernel set (`OPENBLAS_CORETYPE`) when OpenBLAS did not recognise this CPU and fell back to
    /// old ones: Debian's OpenBLAS 0.3.21 calls 5th-generation Xeons "Prescott" and runs SSE3 kernels (measured: 62
    /// tokens/s at 1×128 for the 345M model, against 270 with SkylakeX's AVX-512 kernels on the same machine).
    /// nil when its choice fits the CPU. OpenBLAS reads `OPENBLAS_CORETYPE` only when it loads, so a program sets it
    /// and starts again (the command line does).
    public static func betterOpenBLASCore() -> String? {
        let weak: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine",
                                 "northwood", "banias", "opteron", "opteron_sse3", "barcelona", "bobcat", "unknown"]
        guard weak.contains(openBLASCore.lowercased()) else { return nil }
        let flags = cpuFlags
        if ["avx512f", "avx512dq", "avx512bw", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        if flags.contains("avx") { return "SandyBridge" }
        return nil
    }

    /// The CPU's feature flags (/proc/cpuinfo), e.g. "avx2", "avx512_bf16".
    public static let cpuFlags: Set<String> = Set((cpuInfo("flags") ?? "").split(separator: " ").map(String.init))

    /// The CPU's vendor (/proc/cpuinfo), e.g. "GenuineIntel", "AuthenticAMD" ("" when unknown).
    public static let cpuVendor: String = cpuInfo("vendor_id") ?? ""

    /// The value of the first /proc/cpuinfo line that starts with `key`, trimmed; nil when there is none.
    static func cpuInfo(_ key: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        return line.split(separator: ":").dropFirst().joined(separator: ":").trimmingCharacters(in: .whitespaces)
    }
}

#if canImport(Glibc)
/// glibc's `int mallopt(int, int)` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
