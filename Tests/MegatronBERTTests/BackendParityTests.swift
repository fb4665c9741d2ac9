import Foundation
import Testing
import TensorFiles
import MegatronBERT
@testable import MegatronModel
import MegatronBackendChecks

/// Every head, both architectures, run through the `Backend` protocol on a second, deliberately naive backend
/// (plain loops, no shared kernel): its outputs match `CPUBackend`'s and transformers' within 1e-4 (the parity
/// bound; measured worst 1.4e-5 against the CPU) — the model code depends on
/// the protocol alone.
@Suite struct BackendParityTests {
    @Test(arguments: ParityTests.models)
    func aNaiveBackendGivesTheSameOutputs(name: String) throws {
        let batch = try Fixtures.batch(name.hasSuffix("ForMultipleChoice") ? "batch_mc" : "batch")
        let cpu = try MegatronBERTModel(path: Fixtures.model(name)).forward(batch)
        let naive = try MegatronBERTModel(path: Fixtures.model(name), backend: ReferenceBackend()).forward(batch)
        #expect(naive.all.map(\.name) == cpu.all.map(\.name))
        for ((output, a), (_, b)) in zip(naive.all, cpu.all) {
            #expect(a.shape == b.shape, "\(output)")
            let worst = zip(a.toArray(), b.toArray()).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-4, "\(name) \(output): naive vs CPU max |Δ| \(worst)")
        }
        expectOutputs(naive, match: try Fixtures.expected(name), tolerance: 1e-4)
    }

    /// Half-precision weights and fill-mask's logits-at-positions path go through the protocol too.
    @Test func halfPrecisionAndMaskedPositions() throws {
        let batch = try Fixtures.batch()
        for dtype in [DType.fp16, .bf16] {
            // The naive backend multiplies in FP32, as the CPU backend does on OpenBLAS (oneDNN may multiply BF16 in BF16).
            let cpu = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: dtype,
                                            backend: CPUBackend(products: .openBLAS))
            let naive = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: dtype, backend: ReferenceBackend())
            let positions = [(row: 0, position: 2), (row: 2, position: 4)]
            let a = try naive.maskedLMLogits(batch, at: positions), b = try cpu.maskedLMLogits(batch, at: positions)
            #expect(a.shape == b.shape)
            #expect(zip(a.toArray(), b.toArray()).map { abs($0 - $1) }.max() ?? 0 <= 1e-4, "\(dtype)")
        }
    }
}
