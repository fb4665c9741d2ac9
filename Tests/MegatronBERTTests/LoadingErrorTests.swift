import Foundation
import Testing
import TensorFiles
import MegatronBERT
@testable import MegatronModel

/// Strict loading: every problem with a checkpoint is a `ModelError` that names what is wrong.
@Suite struct LoadingErrorTests {
    static func tensors(_ name: String) throws -> (BertConfig, [String: StoredTensor]) {
        let checkpoint = try CheckpointDirectory(path: Fixtures.model(name))
        return (checkpoint.config, checkpoint.tensors)
    }

    static func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func aMissingTensorIsNamed() throws {
        var (config, tensors) = try Self.tensors("megatron-ForPreTraining")
        tensors["bert.encoder.layer.1.attention.self.key.bias"] = nil
        let text = Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }
        #expect(text.contains("missing tensor 'bert.encoder.layer.1.attention.self.key.bias'"), "\(text)")
    }

    @Test func anUnexpectedTensorIsNamed() throws {
        var (config, tensors) = try Self.tensors("megatron-ForPreTraining")
        tensors["bert.encoder.layer.7.extra.weight"] = tensors["bert.encoder.ln.weight"]
        let text = Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }
        #expect(text.contains("unexpected tensor 'bert.encoder.layer.7.extra.weight'"), "\(text)")
    }

    @Test func aWrongShapeIsNamed() throws {
        var (config, tensors) = try Self.tensors("megatron-ForPreTraining")
        tensors["bert.pooler.dense.bias"] = tensors["cls.predictions.bias"]
        let text = Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }
        #expect(text.contains("tensor 'bert.pooler.dense.bias' has shape [53] but config.json implies [30]"), "\(text)")
    }

    @Test func aConfigThatDoesNotMatchTheWeights() throws {
        var (config, tensors) = try Self.tensors("megatron-ForPreTraining")
        config.numHiddenLayers = 3
        #expect(Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }.contains("config.json says num_hidden_layers 3 but the checkpoint holds 2 layers"))
        config.numHiddenLayers = 1
        #expect(Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }.contains("unexpected tensors 'bert.encoder.layer.1."))
        config.numHiddenLayers = 2
        config.intermediateSize = 64
        #expect(Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }.contains("has shape [70, 30] but config.json implies [64, 30]"))
        // A BERT config over Megatron weights: no embedding LayerNorm, so a missing tensor.
        (config, _) = try Self.tensors("megatron-ForPreTraining")
        config.architecture = .bert
        #expect(Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }.contains("missing tensor 'bert.embeddings.LayerNorm.weight'"))
        tensors = [:]
        _ = tensors
    }

    @Test func integerTensorsAreNotWeights() throws {
        var (config, tensors) = try Self.tensors("megatron-Model")
        let ints = OwnedBytes(count: 30 * 8)
        tensors["encoder.ln.bias"] = StoredTensor(dtype: .int64, shape: [30], bytes: ints.bytes, owner: ints)
        let text = Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }
        #expect(text.contains("'encoder.ln.bias' is stored as I64"), "\(text)")
        config.architectures = []
        _ = config
    }

    @Test func theHeadIsInferredFromKeysWithoutArchitectures() throws {
        var (config, tensors) = try Self.tensors("megatron-ForPreTraining")
        config.architectures = []
        #expect(try MegatronBERTModel(config: config, tensors: tensors).head == .preTraining)
        (config, tensors) = try Self.tensors("megatron-ForQuestionAnswering")
        config.architectures = []
        #expect(try MegatronBERTModel(config: config, tensors: tensors).head == .questionAnswering)
        (config, tensors) = try Self.tensors("megatron-ForSequenceClassification")
        config.architectures = []
        #expect(Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }.contains("add e.g. \"architectures\""))
    }

    @Test func unsupportedArchitecturesAreNamed() throws {
        var (config, tensors) = try Self.tensors("megatron-ForMaskedLM")
        config.architectures = ["MegatronBertForCausalLM"]
        #expect(Self.message { _ = try MegatronBERTModel(config: config, tensors: tensors) }.contains("architecture MegatronBertForCausalLM is not supported"))
    }

    @Test(arguments: [
        (#"{"model_type": "gpt2"}"#, "model_type \"gpt2\" is not supported"),
        (#"{"hidden_size": 8}"#, "no model_type"),
        (#"{"model_type": "bert", "hidden_act": "swish"}"#, "hidden_act \"swish\" is not supported"),
        (#"{"model_type": "bert", "hidden_size": 10, "num_attention_heads": 3}"#, "not a multiple of num_attention_heads"),
        (#"{"model_type": "bert", "num_hidden_layers": -1}"#, "num_hidden_layers must be a positive integer"),
        (#"{"model_type": "bert", "position_embedding_type": "relative_key"}"#, "relative_key"),
        (#"{"model_type": "bert""#, "not valid JSON"),
    ])
    func badConfigs(json: String, message: String) {
        let text = Self.message { _ = try BertConfig(json: Data(json.utf8)) }
        #expect(text.contains(message), "\(text)")
    }

    @Test func aDirectoryWithoutWeights() throws {
        let dir = try Fixtures.copy("megatron-Model")
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        #expect(Self.message { _ = try MegatronBERTModel(path: dir) }.contains("no weights in"))
        #expect(Self.message { _ = try MegatronBERTModel(path: dir + "/nothing-here") }.contains("does not exist"))
        try FileManager.default.removeItem(atPath: dir + "/config.json")
        #expect(Self.message { _ = try MegatronBERTModel(path: dir) }.contains("config.json"))
    }

    @Test func aCorruptWeightFileIsAnErrorNotACrash() throws {
        let dir = try Fixtures.copy("megatron-Model")
        let path = dir + "/model.safetensors"
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try whole.prefix(whole.count - 100).write(to: URL(fileURLWithPath: path))
        let text = Self.message { _ = try MegatronBERTModel(path: dir) }
        #expect(text.contains("truncated file"), "\(text)")
    }

    @Test func aShardIndexNamingAMissingFile() throws {
        let dir = try Fixtures.copy("megatron-ForPreTraining-sharded")
        try FileManager.default.removeItem(atPath: dir + "/model-00002-of-00003.safetensors")
        let text = Self.message { _ = try MegatronBERTModel(path: dir) }
        #expect(text.contains("model-00002-of-00003.safetensors"), "\(text)")
    }
}

/// A config.json field of the wrong type is an error naming the field, never a silent default.
@Suite struct ConfigTypeTests {
    static let base = #"{"model_type": "megatron-bert", "hidden_size": 32, "num_attention_heads": 4"#

    @Test(arguments: [#""layer_norm_eps": "x""#, #""tie_word_embeddings": "yes""#, #""architectures": [1]"#,
                      #""hidden_act": 5"#, #""num_hidden_layers": 2.5"#, #""is_decoder": 0"#, #""problem_type": 3"#,
                      #""id2label": [1]"#, #""model_type": 7"#])
    func aWrongTypeIsAnError(field: String) throws {
        let json = Self.base + ", " + field + "}"
        #expect(throws: ModelError.self) { try BertConfig(json: Data(json.utf8)) }
        let key = String(field.split(separator: "\"")[0])
        do { _ = try BertConfig(json: Data(json.utf8)) } catch let error as ModelError {
            #expect(error.message.contains(key), "\(error.message)")
        }
    }

    @Test func nullIsAbsent() throws {
        let config = try BertConfig(json: Data((Self.base + #", "problem_type": null, "layer_norm_eps": null}"#).utf8))
        #expect(config.problemType == nil && config.layerNormEps == 1e-12)
    }
}
