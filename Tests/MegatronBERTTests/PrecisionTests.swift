import Foundation
import Testing
import TensorFiles
@testable import MegatronBERT

/// Half-precision weights. Compute is FP32 in every mode, so a model whose weights are FP16 (or BF16)
/// must reproduce transformers' float64 outputs of those same rounded weights to FP32 accuracy (1e-4),
/// whether the file stores them rounded or `--dtype` rounds them at load time. Against the unrounded FP32
/// model the difference is the weights' rounding: bounded here by 0.05 (FP16) and 0.3 (BF16) on logits of
/// magnitude ~10 with this fixture's deliberately large weights (measured ≈ 0.01 and ≈ 0.1).
@Suite struct PrecisionTests {
    @Test(arguments: [("f16", DType.fp16), ("bf16", DType.bf16)])
    func halfPrecisionFilesMatchTheirRoundedReference(tag: String, dtype: DType) throws {
        let name = "megatron-ForPreTraining-\(tag)"
        for keep in [DType.fp32, dtype] {
            let model = try MegatronBERTModel(path: Fixtures.model(name), dtype: keep)
            expectOutputs(try model.forward(try Fixtures.batch()), match: try Fixtures.expected(name), tolerance: 1e-4)
        }
    }

    @Test(arguments: [("f16", DType.fp16, 0.05), ("bf16", DType.bf16, 0.3)])
    func roundingAnFP32FileAtLoadTime(tag: String, dtype: DType, bound: Double) throws {
        let model = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: dtype)
        #expect(model.dtype == dtype)
        let outputs = try model.forward(try Fixtures.batch())
        expectOutputs(outputs, match: try Fixtures.expected("megatron-ForPreTraining-\(tag)"), tolerance: 1e-4)
        expectOutputs(outputs, match: try Fixtures.expected("megatron-ForPreTraining"), tolerance: bound)
    }

    @Test func halfWeightsTakeHalfTheMemory() throws {
        let full = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .fp32)
        let half = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .fp16)
        #expect(full.embeddings.word.byteCount == 2 * half.embeddings.word.byteCount)
        #expect(half.layers[0].intermediate.weight.dtype == .fp16)
    }
}
