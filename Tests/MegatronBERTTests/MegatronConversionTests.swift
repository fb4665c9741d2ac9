import Foundation
import Testing
import TensorFiles
import BERTTokenizer
import MegatronBERT
@testable import MegatronModel
import TestSupport

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
        let dir = Scratch.path("megatron")
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

    /// Shaped like NVIDIA's NGC files (no args, no checkpoint_version, old names, fp16, legacy torch.save in a
    /// deflated zip) with the cased and uncased embedding sizes: converted, they give transformers' outputs
    /// (float64 on the same fp16 weights; 1e-4), and the tokenizer's casing follows the embedding rows.
    @Test(arguments: [("ngc-cased", false), ("ngc-uncased", true)])
    func convertsNGCShapedCheckpoints(name: String, lowercase: Bool) throws {
        let converted = try MegatronConversion.load(path: Fixtures.root + "/megatron/\(name).zip", heads: 2)
        #expect(converted.config.vocabSize == (lowercase ? 30592 : 29056))
        #expect(converted.config.architectures == ["MegatronBertForPreTraining"] && converted.config.layerNormEps == 1e-5)
        #expect(converted.notes.contains { $0.contains("no checkpoint_version") })
        let (casing, warnings) = converted.casing()
        #expect(casing.lowercase == lowercase && casing.evidence == .embeddingRows && warnings.isEmpty)

        let expected = try Fixtures.expected(name)
        func ints(_ key: String) throws -> [[Int]] {
            let t = try #require(expected[key])
            let values = t.toDoubles().map { Int($0) }
            return stride(from: 0, to: values.count, by: t.shape[1]).map { Array(values[$0..<($0 + t.shape[1])]) }
        }
        let batch = Batch(inputIDs: try ints("input_ids"), attentionMask: try ints("attention_mask"),
                          tokenTypeIDs: try ints("token_type_ids"))
        // Written as a directory (as `convert` does) and loaded from there.
        let directory = Scratch.path("ngc")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try converted.write(to: directory, dtype: .fp16)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/tokenizer_config.json"))) as? [String: Any]
        #expect(config?["do_lower_case"] as? Bool == lowercase)
        for model in [try MegatronBERTModel(config: converted.config, tensors: converted.tensors), try MegatronBERTModel(path: directory)] {
            let outputs = try model.forward(batch)
            let subset = ["last_hidden_state", "pooler_output", "seq_relationship_logits"].reduce(into: [String: StoredTensor]()) { $0[$1] = expected[$1] }
            expectOutputs(outputs, match: subset, tolerance: 1e-4)
            let logits = try #require(outputs["prediction_logits"])
            let columns = try #require(expected["columns"]).toDoubles().map { Int($0) }
            let reference = try #require(expected["prediction_logits_columns"]).toDoubles()
            let (rows, vocab) = (logits.shape[0] * logits.shape[1], logits.shape[2])
            var worst = 0.0
            for r in 0..<rows {
                for (k, c) in columns.enumerated() {
                    worst = max(worst, abs(Double(logits[r * vocab + c]) - reference[r * columns.count + k]))
                }
            }
            #expect(worst <= 1e-4, "prediction logits: max |Δ| \(worst)")
        }
    }

    /// A model trained without token types (--bert-no-binary-head) converts with a zero token-type table.
    @Test func withoutTokenTypeEmbeddingsTheTableIsZero() throws {
        let checkpoint = try TorchCheckpoint(path: Fixtures.root + "/megatron/v2-new-names.pt")
        let tensors = checkpoint.tensors.filter { !$0.key.contains("binary_head") && !$0.key.contains("tokentype_embeddings") }
        let converted = try MegatronConversion.convert(root: checkpoint.root, tensors: tensors, path: "x", heads: nil)
        let table = try #require(converted.tensors["bert.embeddings.token_type_embeddings.weight"])
        #expect(table.shape == [2, converted.config.hiddenSize] && table.toFloats().allSatisfy { $0 == 0 })
        #expect(converted.config.typeVocabSize == 2)
        #expect(converted.notes.contains { $0.contains("no token-type embeddings") })
        // Its outputs are the original model's with its token-type table zeroed.
        let full = try MegatronConversion.convert(root: checkpoint.root, tensors: checkpoint.tensors, path: "x", heads: nil)
        var zeroed = full.tensors
        zeroed["bert.embeddings.token_type_embeddings.weight"] = table
        let reference = try MegatronBERTModel(config: full.config, tensors: zeroed).forward(try Fixtures.batch())
        let actual = try MegatronBERTModel(config: converted.config, tensors: converted.tensors).forward(try Fixtures.batch())
        #expect(converted.notes.contains { $0.contains("the pooler is left out") })
        #expect(actual.lastHiddenState.toArray() == reference.lastHiddenState.toArray())
    }

    /// What decides lowercasing, strongest first, and the warnings when weaker evidence disagrees.
    @Test func casingFollowsTheStrongestEvidence() throws {
        let cased = try Vocabulary(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Paris", "the"])
        let uncased = try Vocabulary(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "paris", "the", "[unused0]"])
        #expect(cased.hasUppercasePieces && !uncased.hasUppercasePieces)
        func decide(_ stated: Bool?, _ type: String?, _ vocabulary: Vocabulary?, _ rows: Int) -> TokenizerCasing {
            TokenizerCasing.decide(stated: stated.map { .stated(lowercase: $0, by: "--flag") }, tokenizerType: type,
                                   vocabulary: vocabulary, embeddingRows: rows).casing
        }
        #expect(decide(nil, nil, nil, 30592).lowercase && !decide(nil, nil, nil, 29056).lowercase)
        #expect(decide(nil, nil, nil, 100).evidence == .assumed && !decide(nil, nil, nil, 100).lowercase)
        #expect(decide(nil, nil, uncased, 29056).lowercase)
        #expect(!decide(nil, "BertWordPieceCase", uncased, 30592).lowercase)
        #expect(decide(nil, "BertWordPieceLowerCase", nil, 29056).lowercase)
        #expect(!decide(false, "BertWordPieceLowerCase", uncased, 30592).lowercase)
        let (_, warnings) = TokenizerCasing.decide(stated: .stated(lowercase: true, by: "--lowercase"), tokenizerType: nil,
                                                   vocabulary: cased, embeddingRows: 29056)
        #expect(warnings.count == 2)
    }

    @Test func aHuggingFaceFileIsNotAMegatronCheckpoint() throws {
        #expect(throws: ModelError.self) { try MegatronConversion.load(path: Fixtures.model("megatron-ForPreTraining-bin") + "/pytorch_model.bin") }
    }
}
