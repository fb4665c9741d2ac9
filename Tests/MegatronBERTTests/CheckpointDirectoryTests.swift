import Foundation
import Testing
import TensorFiles
@testable import MegatronBERT
@testable import MegatronCompute

@Suite struct CheckpointDirectoryTests {
    /// FP32 safetensors kept as FP32 are used in place in the memory map; a conversion owns its copy.
    @Test func weightsAreMappedNotCopiedWhenTheDtypeMatches() throws {
        let mapped = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .fp32)
        func owner(_ model: MegatronBERTModel) -> AnyObject? { (model.layers[0].intermediate.weight as? CPUMatrix)?.owner }
        #expect(owner(mapped) is MappedFile)
        let f16 = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining-f16"), dtype: .fp16)
        #expect(owner(f16) is MappedFile)
        let converted = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .fp16)
        #expect(owner(converted) is OwnedBytes)
    }

    @Test func readsAShardedPytorchBinThroughItsIndex() throws {
        let dir = try Fixtures.copy("megatron-ForPreTraining-bin")
        let names = try TorchCheckpoint(path: dir + "/pytorch_model.bin").tensors.keys
        try FileManager.default.moveItem(atPath: dir + "/pytorch_model.bin", toPath: dir + "/pytorch_model-00001-of-00001.bin")
        let index = ["weight_map": Dictionary(uniqueKeysWithValues: names.map { ($0, "pytorch_model-00001-of-00001.bin") })]
        try JSONSerialization.data(withJSONObject: index).write(to: URL(fileURLWithPath: dir + "/pytorch_model.bin.index.json"))
        let model = try MegatronBERTModel(path: dir)
        expectOutputs(try model.forward(try Fixtures.batch()), match: try Fixtures.expected("megatron-ForPreTraining"),
                      tolerance: 1e-4)
    }

    @Test func aShardIndexThatPointsOutsideTheDirectoryIsRefused() throws {
        let dir = try Fixtures.copy("megatron-ForPreTraining-sharded")
        try Data(#"{"weight_map": {"a": "../../etc/passwd"}}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        #expect(throws: ModelError.self) { try CheckpointDirectory(path: dir) }
    }

    /// The same count transformers reports (the shard index's total_parameters; the tied decoder counted once).
    @Test func parameterCountMatchesTransformers() throws {
        let model = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"))
        #expect(model.parameterCount == 20385)
    }
}
