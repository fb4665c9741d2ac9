import ArgumentParser
import Foundation
import MegatronBERT
import MegatronBackendChecks

struct TestOpsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-ops",
        abstract: "Check every operation of a device's backend against the reference backend (random shapes, every precision).",
        discussion: """
        Each Backend operation (embeddings, products with bias, residual and activation, layer norm, activations, \
        padded and packed attention, pooling, row gathers) runs on random inputs of odd and padded shapes in every \
        precision the device runs, on the device and on a plain reference in double precision; an operation passes \
        when its largest error, relative to the reference's largest value, is within its precision's bound (FP32 \
        1e-4, FP16 1e-2, BF16 4e-2, int8 5e-2). Exits 1 when any fails. Like ggml's test-backend-ops: the way to \
        hold a new backend, or a new GPU, to the CPU's numbers.

        Example:
          megatron-bert test-ops --device cuda
          megatron-bert test-ops --device cpu --dtype bf16 --filter attention --verbose
        """
    )

    @Option(help: Device.help)
    var device: Device = .auto

    @Option(help: "The precisions to check, comma-separated (default: every one the device runs).")
    var dtype: String?

    @Option(help: "Only the checks whose name contains this text (e.g. attention, linear, \"fp16 x(17\").")
    var filter: String?

    @Option(help: "Seed of the random inputs.")
    var seed: UInt64 = 1

    @Flag(help: Device.tf32Help)
    var tf32 = false

    @Flag(help: "Print every check, not only the failures.")
    var verbose = false

    @Flag(help: "One JSON object per check (name, error, tolerance, passed, failure).")
    var json = false

    func run() throws {
        try reportingErrors {
            let dtypes = try dtype.map { list in
                try list.split(separator: ",").map { name in
                    guard let dtype = DType(rawValue: String(name)) else {
                        throw CommandError("--dtype: '\(name)' is not one of \(DType.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return dtype
                }
            } ?? DType.allCases
            // The backend opened for the first precision serves them all (int8 only where the device runs it).
            let backend = try device.backend(dtype: dtypes.first { $0 != .int8 } ?? .fp32, tf32: tf32, quiet: json)
            let results = BackendOpChecks.run(on: backend, dtypes: dtypes, seed: seed, filter: filter)
            for result in results where verbose || json || !result.passed {
                if json {
                    let object: [String: Any] = ["name": result.name, "error": result.error.isFinite ? result.error : -1,
                                                 "tolerance": result.tolerance, "passed": result.passed,
                                                 "failure": result.failure ?? NSNull()]
                    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                    Console.line(String(decoding: data, as: UTF8.self))
                } else {
                    let verdict = result.passed ? "ok  " : "FAIL"
                    Console.line("\(verdict) \(result.name): " + (result.failure ?? String(format: "error %.3g (bound %.0e)", result.error, result.tolerance)))
                }
            }
            let failed = results.filter { !$0.passed }.count
            let skipped = dtypes.filter { backend.unsupportedReason(for: $0) != nil }
            if !json {
                Console.line("\(backend.name), \(dtypes.filter { !skipped.contains($0) }.map(\.rawValue).joined(separator: ", ")): "
                             + "\(results.count - failed) of \(results.count) checks within their bounds"
                             + (skipped.isEmpty ? "" : "; not run here: \(skipped.map(\.rawValue).joined(separator: ", "))"))
            }
            if results.isEmpty { throw CommandError("no check ran (--filter \(filter ?? "") --dtype \(dtype ?? ""))") }
            if failed > 0 { throw CommandError("\(failed) of \(results.count) checks on \(backend.name) are outside their bounds") }
        }
    }
}
