import Foundation
import TensorFiles

/// The layer layout: Megatron's pre-LayerNorm encoder, or the original post-LayerNorm BERT.
public enum Architecture: String, Sendable {
    /// `model_type: megatron-bert`: `x + Attn(LN(x))`, `x + MLP(LN(x))`, final `encoder.ln`, no embedding LayerNorm.
    case megatronBERT = "megatron-bert"
    /// `model_type: bert`: `LN(x + Attn(x))`, `LN(x + MLP(x))`, embedding LayerNorm.
    case bert = "bert"
}

/// A Hugging Face `config.json` for `MegatronBertConfig` or `BertConfig`.
///
/// ```swift
/// let config = try BertConfig(path: "model/config.json")
/// print(config.hiddenSize, config.numHiddenLayers)
/// ```
public struct BertConfig: Sendable, Equatable {
    public var architecture: Architecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var hiddenAct: String
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var layerNormEps: Double
    public var tieWordEmbeddings: Bool
    /// `architectures` from the config (e.g. `["MegatronBertForPreTraining"]`).
    public var architectures: [String]
    /// Labels of classification heads, by index (`id2label`), if any.
    public var id2label: [Int: String]
    public var numLabels: Int
    public var problemType: String?
    /// Dropout after the embeddings and each block (`hidden_dropout_prob`, 0.1 by default), on the attention
    /// probabilities (`attention_probs_dropout_prob`), before a classifier (`classifier_dropout`, nil: the hidden
    /// one); training uses them, inference never.
    public var hiddenDropoutProb: Double = 0.1
    public var attentionProbsDropoutProb: Double = 0.1
    public var classifierDropout: Double?
    /// The standard deviation a new head's weights are drawn with (`initializer_range`).
    public var initializerRange: Double = 0.02

    /// The 345M Megatron-BERT (cased) shape.
    public static let megatronBERT345M = BertConfig(
        architecture: .megatronBERT, vocabSize: 29056, hiddenSize: 1024, numHiddenLayers: 24, numAttentionHeads: 16,
        intermediateSize: 4096, hiddenAct: "gelu", maxPositionEmbeddings: 512, typeVocabSize: 2, layerNormEps: 1e-5,
        tieWordEmbeddings: true, architectures: ["MegatronBertForPreTraining"], id2label: [:], numLabels: 2, problemType: nil)

    /// A config from its fields (for converted checkpoints and benchmarks); `init(path:)` reads config.json.
    public init(architecture: Architecture, vocabSize: Int, hiddenSize: Int, numHiddenLayers: Int,
                numAttentionHeads: Int, intermediateSize: Int, hiddenAct: String, maxPositionEmbeddings: Int,
                typeVocabSize: Int, layerNormEps: Double, tieWordEmbeddings: Bool = true,
                architectures: [String] = [], id2label: [Int: String] = [:], numLabels: Int = 2,
                problemType: String? = nil) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.hiddenAct = hiddenAct
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.tieWordEmbeddings = tieWordEmbeddings
        self.architectures = architectures
        self.id2label = id2label
        self.numLabels = numLabels
        self.problemType = problemType
    }

    /// Reads and validates a `config.json` file.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError("cannot read \(path): a model directory needs the config.json that Hugging Face's save_pretrained writes")
        }
        try self.init(json: data, path: path)
    }

    /// Parses config JSON; keys that are absent take transformers' defaults for the model type.
    public init(json data: Data, path: String = "config.json") throws {
        let json: [String: JSONValue]
        do {
            guard let object = try JSONValue.parse(data).object else { throw ModelError("\(path): not a JSON object") }
            json = object
        } catch let error as ModelError {
            throw error
        } catch {
            throw ModelError("\(path): not valid JSON: \(error)")
        }
        // A key given with the wrong type is an error, never a silent default (null counts as absent).
        func present(_ key: String) -> JSONValue? {
            guard let value = json[key], value != .null else { return nil }
            return value
        }
        func wrong(_ key: String, _ what: String) -> ModelError {
            ModelError("\(path): \(key) must be \(what) (it is \(present(key).map { "\($0)" } ?? "null"))")
        }
        func int(_ key: String, _ fallback: Int) throws -> Int {
            guard let value = present(key) else { return fallback }
            guard let i = value.int, i > 0 else { throw wrong(key, "a positive integer") }
            return i
        }
        func string(_ key: String) throws -> String? {
            guard let value = present(key) else { return nil }
            guard let text = value.string else { throw wrong(key, "a string") }
            return text
        }
        func bool(_ key: String, _ fallback: Bool) throws -> Bool {
            guard let value = present(key) else { return fallback }
            guard let b = value.bool else { throw wrong(key, "true or false") }
            return b
        }
        guard let type = try string("model_type") else {
            throw ModelError("\(path): no model_type (expected \"megatron-bert\" or \"bert\")")
        }
        guard let architecture = Architecture(rawValue: type) else {
            throw ModelError(.unsupported, "\(path): model_type \"\(type)\" is not supported (expected \"megatron-bert\" or \"bert\")")
        }
        let megatron = architecture == .megatronBERT
        if let position = try string("position_embedding_type"), position != "absolute" {
            throw ModelError(.unsupported, "\(path): position_embedding_type \"\(position)\" is not supported (only absolute)")
        }
        if try bool("is_decoder", false) {
            throw ModelError(.unsupported, "\(path): is_decoder is true; only the bidirectional encoder is supported")
        }
        self.architecture = architecture
        vocabSize = try int("vocab_size", megatron ? 29056 : 30522)
        hiddenSize = try int("hidden_size", megatron ? 1024 : 768)
        numHiddenLayers = try int("num_hidden_layers", megatron ? 24 : 12)
        numAttentionHeads = try int("num_attention_heads", megatron ? 16 : 12)
        intermediateSize = try int("intermediate_size", megatron ? 4096 : 3072)
        maxPositionEmbeddings = try int("max_position_embeddings", 512)
        typeVocabSize = try int("type_vocab_size", 2)
        hiddenAct = try string("hidden_act") ?? "gelu"
        guard Activation(configName: hiddenAct) != nil else {
            throw ModelError(.unsupported, "\(path): hidden_act \"\(hiddenAct)\" is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)")
        }
        if let eps = present("layer_norm_eps") {
            guard let value = eps.double, value >= 0 else { throw wrong("layer_norm_eps", "a number, not negative") }
            layerNormEps = value
        } else {
            layerNormEps = 1e-12
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError("\(path): hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        tieWordEmbeddings = try bool("tie_word_embeddings", true)
        if let list = present("architectures") {
            guard let names = list.array?.map(\.string), !names.contains(nil) else { throw wrong("architectures", "a list of strings") }
            architectures = names.compactMap { $0 }
        } else {
            architectures = []
        }
        var labels: [Int: String] = [:]
        if let map = present("id2label") {
            guard let object = map.object else { throw wrong("id2label", "an object") }
            for (key, value) in object {
                guard let index = Int(key), index >= 0, let label = value.string else {
                    throw ModelError("\(path): id2label must map integer strings to label strings")
                }
                labels[index] = label
            }
        }
        id2label = labels
        numLabels = present("num_labels") == nil ? (labels.isEmpty ? 2 : labels.count) : try int("num_labels", 2)
        problemType = try string("problem_type")
        func probability(_ key: String) throws -> Double? {
            guard let value = present(key) else { return nil }
            guard let p = value.double, p >= 0, p < 1 else { throw wrong(key, "a probability from 0 up to (not including) 1") }
            return p
        }
        hiddenDropoutProb = try probability("hidden_dropout_prob") ?? 0.1
        attentionProbsDropoutProb = try probability("attention_probs_dropout_prob") ?? 0.1
        classifierDropout = try probability("classifier_dropout")
        if let range = present("initializer_range") {
            guard let value = range.double, value > 0 else { throw wrong("initializer_range", "a positive number") }
            initializerRange = value
        }
    }

    /// hidden_size / num_attention_heads.
    public var headDim: Int { hiddenSize / numAttentionHeads }

    var activation: Activation { Activation(configName: hiddenAct) ?? .gelu }

    /// The config as Hugging Face's `save_pretrained` writes it (`config.json`).
    public func jsonData() throws -> Data {
        var object: [String: Any] = [
            "model_type": architecture.rawValue, "architectures": architectures, "vocab_size": vocabSize,
            "hidden_size": hiddenSize, "num_hidden_layers": numHiddenLayers, "num_attention_heads": numAttentionHeads,
            "intermediate_size": intermediateSize, "hidden_act": hiddenAct, "max_position_embeddings": maxPositionEmbeddings,
            "type_vocab_size": typeVocabSize, "layer_norm_eps": layerNormEps, "tie_word_embeddings": tieWordEmbeddings,
            "hidden_dropout_prob": hiddenDropoutProb, "attention_probs_dropout_prob": attentionProbsDropoutProb,
            "initializer_range": initializerRange, "pad_token_id": 0,
        ]
        if let classifierDropout { object["classifier_dropout"] = classifierDropout }
        if !id2label.isEmpty {
            object["id2label"] = Dictionary(uniqueKeysWithValues: id2label.map { (String($0.key), $0.value) })
            object["label2id"] = Dictionary(uniqueKeysWithValues: id2label.map { ($0.value, $0.key) })
        }
        if let problemType { object["problem_type"] = problemType }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}
