import Foundation
import Testing
import TensorFiles
import MegatronBERT
@testable import MegatronModel
@testable import MegatronCPU

@Suite struct CheckpointDirectoryTests {
    /// FP32 safetensors kept as FP32 are used in place in the memory map; a conversion owns its copy (the plain rows
    /// the OpenBLAS path multiplies, and every embedding table). With oneDNN, a weight only multiplied by is kept
    /// packed, its mapped pages given back.
    @Test func weightsAreMappedNotCopiedWhenTheDtypeMatches() throws {
        let openBLAS = CPUBackend(products: .openBLAS)
        let mapped = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .fp32, backend: openBLAS)
        func owner(_ model: MegatronBERTModel) -> AnyObject? { (model.layers[0].intermediate.weight as? CPUMatrix)?.owner }
        #expect(owner(mapped) is MappedFile)
        let f16 = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining-f16"), dtype: .fp16, backend: openBLAS)
        #expect(owner(f16) is MappedFile)
        let converted = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .fp16, backend: openBLAS)
        #expect(owner(converted) is OwnedBytes)
        guard OneDNN.shared != nil else { return }
        let packed = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .fp32,
                                           backend: CPUBackend(products: .oneDNN))
        let weight = try #require(packed.layers[0].intermediate.weight as? CPUMatrix)
        #expect(weight.packed != nil && weight.storage == nil)
        let word = try #require(packed.embeddings.word as? CPUMatrix)  // gathered, and the tied decoder: both forms
        #expect(word.packed != nil && word.owner is MappedFile)
        let position = try #require(packed.embeddings.position as? CPUMatrix)  // gathered only
        #expect(position.packed == nil && position.owner is MappedFile)
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
