import Foundation
import Testing
import TensorFiles
import MegatronBERT
@testable import MegatronModel
@testable import MegatronCPU

/// Half-precision weights. FP32 and FP16 weights multiply in FP32 (on either product library), so a model whose
/// weights are FP16 (or BF16, on a CPU without BF16 products) must reproduce transformers' float64 outputs of those
/// same rounded weights to FP32 accuracy (1e-4), whether the file stores them rounded or `--dtype` rounds them at
/// load time. BF16 weights on a CPU with BF16 products (AVX512_BF16 or AMX, through oneDNN) multiply in BF16 — the
/// activations are rounded to BF16 too, as PyTorch's autocast does — and must come within 2% of each output's
/// largest magnitude (measured ≈ 0.6%: 0.05 on logits up to ~8). Against the unrounded FP32 model the difference is
/// the weights' rounding: bounded here by 0.05 (FP16) and 0.3 (BF16) on logits of magnitude ~10 with this fixture's
/// deliberately large weights (measured ≈ 0.01 and ≈ 0.1).
@Suite struct PrecisionTests {
    /// Every product library this machine has.
    static let libraries = CPUBackend.Products.allCases.filter { $0 == .openBLAS || OneDNN.shared != nil }

    /// The tolerance for a model's outputs against a reference on its rounded weights.
    static func check(_ outputs: ModelOutputs, _ reference: [String: StoredTensor], _ model: MegatronBERTModel,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        guard model.backend.computePrecision(for: model.dtype) == .bf16 else {
            expectOutputs(outputs, match: reference, tolerance: 1e-4, sourceLocation: sourceLocation)
            return
        }
        for (name, expected) in reference {
            let scale = expected.toDoubles().map(abs).max() ?? 1
            expectOutputs(outputs, match: [name: expected], tolerance: 0.02 * scale, sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: [("f16", DType.fp16), ("bf16", DType.bf16)])
    func halfPrecisionFilesMatchTheirRoundedReference(tag: String, dtype: DType) throws {
        let name = "megatron-ForPreTraining-\(tag)"
        for library in Self.libraries {
            for keep in [DType.fp32, dtype] {
                let model = try MegatronBERTModel(path: Fixtures.model(name), dtype: keep, backend: CPUBackend(products: library))
                Self.check(try model.forward(try Fixtures.batch()), try Fixtures.expected(name), model)
            }
        }
    }

    @Test(arguments: [("f16", DType.fp16, 0.05), ("bf16", DType.bf16, 0.3)])
    func roundingAnFP32FileAtLoadTime(tag: String, dtype: DType, bound: Double) throws {
        for library in Self.libraries {
            let model = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: dtype,
                                              backend: CPUBackend(products: library))
            #expect(model.dtype == dtype)
            let outputs = try model.forward(try Fixtures.batch())
            Self.check(outputs, try Fixtures.expected("megatron-ForPreTraining-\(tag)"), model)
            expectOutputs(outputs, match: try Fixtures.expected("megatron-ForPreTraining"), tolerance: bound)
        }
    }

    /// Every product library, every head, FP32: transformers' outputs within 1e-4.
    @Test(arguments: ParityTests.models)
    func everyProductLibraryMatchesTransformers(name: String) throws {
        let batch = try Fixtures.batch(name.hasSuffix("ForMultipleChoice") ? "batch_mc" : "batch")
        for library in Self.libraries {
            let model = try MegatronBERTModel(path: Fixtures.model(name), backend: CPUBackend(products: library))
            expectOutputs(try model.forward(batch), match: try Fixtures.expected(name), tolerance: 1e-4)
        }
    }

    @Test func halfWeightsTakeHalfTheMemory() throws {
        let full = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .fp32)
        let half = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .fp16)
        #expect(full.embeddings.word.byteCount == 2 * half.embeddings.word.byteCount)
        #expect(half.layers[0].intermediate.weight.dtype == .fp16)
    }
}
