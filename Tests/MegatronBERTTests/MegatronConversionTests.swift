import Foundation
import Testing
import TensorFiles
@testable import MegatronBERT

/// Megatron-format checkpoints written by scripts/make_megatron_fixtures.py from the megatron-ForPreTraining
/// fixture: converted back, every tensor must equal the original bit for bit, and the model's outputs must
/// match transformers'.
@Suite struct MegatronConversionTests {
    static let files = ["v0-old-names.pt", "v1-old-names-legacy.pt", "v2-new-names.pt", "v3-no-args.pt", "ngc.zip"]

    @Test(arguments: files)
    func convertsBackToTheHuggingFaceTensors(file: String) throws {
        let converted = try MegatronConversion.load(path: Fixtures.root + "/megatron/" + file, heads: 3)
        let original = try CheckpointDirectory(path: Fixtures.model("megatron-ForPreTraining"))
        #expect(Set(converted.tensors.keys) == Set(original.tensors.keys))
        for (name, expected) in original.tensors {
            let actual = try #require(converted.tensors[name], "\(name)")
            #expect(actual.shape == expected.shape && actual.dtype == expected.dtype, "\(name)")
            #expect(Array(actual.bytes) == Array(expected.bytes), "\(name)")
        }
        #expect(converted.config.numAttentionHeads == 3)
        #expect(converted.config.layerNormEps == 1e-5)
        #expect(converted.config.architectures == ["MegatronBertForPreTraining"])
        let model = try MegatronBERTModel(config: converted.config, tensors: converted.tensors)
        expectOutputs(try model.forward(try Fixtures.batch()), match: try Fixtures.expected("megatron-ForPreTraining"),
                      tolerance: 1e-4)
    }

    @Test func withoutArgsTheAssumptionsAreSaid() throws {
        let converted = try MegatronConversion.load(path: Fixtures.root + "/megatron/v3-no-args.pt", heads: 3)
        #expect(converted.notes.contains { $0.contains("layer_norm_eps set to 1e-5") })
        // Without args and without --heads the head count cannot be known for hidden 30.
        #expect(throws: ModelError.self) { try MegatronConversion.load(path: Fixtures.root + "/megatron/v3-no-args.pt") }
    }

    @Test func argsFromAMegatronOnlyClassAreReadAsData() throws {
        let checkpoint = try TorchCheckpoint(path: Fixtures.root + "/megatron/v2-new-names.pt")
        guard case .dict(let root) = checkpoint.root, case .object(let args)? = root["args"] else {
            Issue.record("no args object")
            return
        }
        #expect(args.module == "argparse" && args.name == "Namespace")
        #expect(args.attribute("hidden_size")?.int == 30)
        guard case .object(let mask)? = args.attribute("attn_mask_type") else {
            Issue.record("attn_mask_type is not kept as an object")
            return
        }
        #expect(mask.module == "megatron.model.enums" && mask.name == "AttnMaskType")
    }

    /// Megatron-LM's own layout: latest_checkpointed_iteration.txt naming release or iter_NNNNNNN.
    @Test(arguments: ["release", "1000"])
    func readsACheckpointDirectory(iteration: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("megatron-\(UUID().uuidString)").path
        let folder = iteration == "release" ? "release" : "iter_0001000"
        try FileManager.default.createDirectory(atPath: dir + "/\(folder)/mp_rank_00", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.root + "/megatron/v2-new-names.pt",
                                         toPath: dir + "/\(folder)/mp_rank_00/model_optim_rng.pt")
        try (iteration + "\n").write(toFile: dir + "/latest_checkpointed_iteration.txt", atomically: true, encoding: .utf8)
        #expect(MegatronConversion.isMegatronPath(dir))
        let model = try MegatronBERTModel(path: dir)
        expectOutputs(try model.forward(try Fixtures.batch()), match: try Fixtures.expected("megatron-ForPreTraining"),
                      tolerance: 1e-4)
        try FileManager.default.createDirectory(atPath: dir + "/\(folder)/mp_rank_01", withIntermediateDirectories: true)
        #expect(throws: ModelError.self) { try MegatronConversion.load(path: dir) }
        try "latest\n".write(toFile: dir + "/latest_checkpointed_iteration.txt", atomically: true, encoding: .utf8)
        #expect(throws: ModelError.self) { try MegatronConversion.load(path: dir) }
    }

    /// Two tensor-parallel ranks (heads, rows and columns split as Megatron-LM splits them) merge into the
    /// model transformers ran.
    @Test func mergesTensorParallelRanks() throws {
        let converted = try MegatronConversion.load(path: Fixtures.root + "/megatron/tp2")
        #expect(converted.notes.contains("merged 2 tensor-parallel ranks"))
        #expect(converted.config.numAttentionHeads == 4 && converted.config.vocabSize == 54 && converted.config.intermediateSize == 64)
        let model = try MegatronBERTModel(config: converted.config, tensors: converted.tensors)
        expectOutputs(try model.forward(try Fixtures.batch()), match: try Fixtures.expected("megatron-tp2"), tolerance: 1e-4)
    }

    /// Checkpoints trained without the binary head (--bert-no-binary-head) or saved without the LM head
    /// convert to the heads they have, and say so.
    @Test func missingHeadsConvertToTheHeadsThereAre() throws {
        let checkpoint = try TorchCheckpoint(path: Fixtures.root + "/megatron/v2-new-names.pt")
        let noBinary = checkpoint.tensors.filter { !$0.key.contains("binary_head") }
        let masked = try MegatronConversion.convert(root: checkpoint.root, tensors: noBinary, path: "x", heads: nil)
        #expect(masked.config.architectures == ["MegatronBertForMaskedLM"])
        #expect(masked.notes.contains { $0.contains("no binary_head") })
        let noHeads = noBinary.filter { !$0.key.contains("lm_head") }
        let bare = try MegatronConversion.convert(root: checkpoint.root, tensors: noHeads, path: "x", heads: nil)
        #expect(bare.config.architectures == ["MegatronBertModel"])
        let model = try MegatronBERTModel(config: bare.config, tensors: bare.tensors)
        let outputs = try model.forward(try Fixtures.batch())
        #expect(outputs.poolerOutput != nil && outputs.headOutputs.isEmpty)
        let full = try MegatronBERTModel(path: Fixtures.root + "/megatron/v2-new-names.pt").forward(try Fixtures.batch())
        #expect(zip(outputs.lastHiddenState.toArray(), full.lastHiddenState.toArray()).allSatisfy { $0 == $1 })
        // An unknown tensor under the model is named, not ignored.
        var extra = checkpoint.tensors
        extra["model.language_model.encoder.layers.0.mystery.weight"] = checkpoint.tensors["model.binary_head.bias"]
        #expect(throws: ModelError.self) { try MegatronConversion.convert(root: checkpoint.root, tensors: extra, path: "x", heads: nil) }
    }

    @Test func aHuggingFaceFileIsNotAMegatronCheckpoint() throws {
        #expect(throws: ModelError.self) { try MegatronConversion.load(path: Fixtures.model("megatron-ForPreTraining-bin") + "/pytorch_model.bin") }
    }
}
