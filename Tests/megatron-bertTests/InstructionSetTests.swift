import Foundation
import Testing
import TensorFiles

/// oneDNN picks its kernels from the CPU's features at run time; `DNNL_MAX_CPU_ISA` caps them. Every instruction
/// set this CPU has is forced in turn (a fresh process each: the cap is read once) and each must give
/// transformers' numbers: FP32 within 1e-4; BF16 within 2% of each output's range (against the float64 outputs on
/// the BF16-rounded weights: exact FP32 math where the cap has no BF16 dot products, BF16 products where it has);
/// int8 every token's hidden state within cosine 0.99 of FP32's — and no kernel above the cap may run (the products',
/// the attention's, int8's quantization and epilogue).
@Suite struct InstructionSetTests {
    /// oneDNN's caps in rising order, with the /proc/cpuinfo flags each needs.
    static let ladder: [(cap: String, flags: [String])] = [
        ("AVX2", ["avx2", "fma"]),
        ("AVX512_CORE", ["avx512f", "avx512bw", "avx512vl", "avx512dq"]),
        ("AVX512_CORE_VNNI", ["avx512_vnni"]),
        ("AVX512_CORE_BF16", ["avx512_bf16"]),
        ("AVX512_CORE_AMX", ["amx_tile", "amx_bf16", "amx_int8"]),
    ]

    /// The cap each of our panel kernels needs.
    static let panelNeeds = ["panel:avx2_int8": "AVX2", "panel:avx512": "AVX512_CORE", "fp32-on-bf16:panel:avx512": "AVX512_CORE",
                             "panel:avx512_vnni": "AVX512_CORE_VNNI", "panel:avx512_bf16": "AVX512_CORE_BF16"]

    /// The caps this CPU supports (each needs its own flags and every lower rung's).
    static let caps: [String] = {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        var result: [String] = []
        for rung in ladder {
            guard rung.flags.allSatisfy(flags.contains) else { break }
            result.append(rung.cap)
        }
        return result
    }()

    static let model = CLI.fixtures + "/models/megatron-ForPreTraining"

    @Test(arguments: InstructionSetTests.caps)
    func everyInstructionSetGivesTheReferenceNumbers(cap: String) throws {
        // OpenMP told there are 16 cores, as on a GPU host: oneDNN must still plan each primitive for the one thread
        // it runs on (AMX BF16 products planned for 3+ threads gave wrong sums there).
        let environment = ["DNNL_MAX_CPU_ISA": cap, "OMP_NUM_THREADS": "16", "MEGATRON_BERT_THREADS": "16"]
        // No kernel above the cap ran, in any precision.
        let above = Self.ladder.drop { $0.cap != cap }.dropFirst().map { $0.cap.lowercased() }
        for dtype in ["fp32", "bf16", "int8"] {
            let bench = try CLI.run(["bench", "--model", Self.model, "--device", "cpu", "--dtype", dtype, "--points", "2x7",
                                     "--min-seconds", "0", "--min-runs", "1", "--json"], environment: environment)
            #expect(bench.status == 0, "\(bench.stderr)")
            let line = try #require(bench.stdout.split(separator: "\n").last)
            let kernels = try #require((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["kernels"] as? [String])
            if cap == "AVX2" && dtype == "int8" {
                // No VNNI: every int8 product through our AVX2 kernel on the panels we packed.
                #expect(kernels == ["panel:avx2_int8"], "\(kernels)")
            }
            for kernel in kernels {
                #expect(!above.contains { kernel.hasSuffix(":" + $0) || kernel.contains(":" + $0 + "_") }, "\(cap) \(dtype) ran \(kernel)")
                // Our panel kernels keep to the cap too (their names say the instructions, not oneDNN's rung).
                if let needs = Self.panelNeeds[kernel] {
                    let rung = Self.ladder.firstIndex { $0.cap == needs } ?? 0
                    #expect(rung <= Self.ladder.firstIndex { $0.cap == cap } ?? 0, "\(cap) \(dtype) ran \(kernel)")
                }
            }
        }
        // The attention kernel keeps to the cap too: AVX2's width below AVX-512.
        let info = try CLI.run(["info", "--model", Self.model, "--json"], environment: environment)
        let fields = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
        #expect(fields?["cpu_attention"] as? String == (cap == "AVX2" ? "avx2" : "avx512"), "\(cap): \(info.stdout) \(info.stderr)")
        // And int8's quantization and epilogue kernels.
        #expect(fields?["cpu_int8_rows"] as? String == (cap == "AVX2" ? "avx2" : "avx512"), "\(cap): \(info.stdout) \(info.stderr)")
        func forward(_ model: String, _ dtype: String) throws -> [String: StoredTensor] {
            let output = CLI.temporaryPath("\(cap)-\(dtype).safetensors")
            defer { try? FileManager.default.removeItem(atPath: output) }
            let result = try CLI.run(["forward", "--model", model, "--input", CLI.fixtures + "/inputs/batch.json", "--output", output,
                                      "--device", "cpu", "--dtype", dtype, "--quiet"], environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            return try SafeTensorsFile(path: output).tensors  // mapped: still readable once the file is unlinked
        }
        let fp32 = try forward(Self.model, "fp32")
        try expectClose(fp32, try SafeTensorsFile(path: CLI.fixtures + "/expected/megatron-ForPreTraining.safetensors").tensors,
                        bound: { _ in 1e-4 }, "\(cap) fp32")
        let bf16Reference = try SafeTensorsFile(path: CLI.fixtures + "/expected/megatron-ForPreTraining-bf16.safetensors").tensors
        try expectClose(try forward(Self.model + "-bf16", "bf16"), bf16Reference,
                        bound: { 0.02 * ($0.toDoubles().map(abs).max() ?? 1) }, "\(cap) bf16")
        // int8: each token's hidden state keeps its direction.
        let int8 = try #require(try forward(Self.model, "int8")["last_hidden_state"]).toDoubles()
        let reference = try #require(fp32["last_hidden_state"])
        let width = reference.shape.last ?? 1
        let float = reference.toDoubles()
        for row in 0..<(float.count / width) {
            let a = Array(float[row * width..<(row + 1) * width]), b = Array(int8[row * width..<(row + 1) * width])
            let dot: Double = zip(a, b).map { $0 * $1 }.reduce(0, +)
            let normA: Double = a.map { $0 * $0 }.reduce(0, +).squareRoot()
            let normB: Double = b.map { $0 * $0 }.reduce(0, +).squareRoot()
            let cosine = dot / (normA * normB)
            #expect(cosine >= 0.99, "\(cap) int8 token \(row): cosine \(cosine)")
        }
    }
}

/// Every tensor of `expected` present in `actual` and within `bound(reference)` of it (max absolute difference).
func expectClose(_ actual: [String: StoredTensor], _ expected: [String: StoredTensor], bound: (StoredTensor) -> Double,
                 _ what: String) throws {
    for (name, reference) in expected {
        let output = try #require(actual[name], "\(what): no \(name)")
        let worst = zip(output.toDoubles(), reference.toDoubles()).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= bound(reference), "\(what) \(name): \(worst)")
    }
}
