import ArgumentParser
import Foundation
import MegatronBERT

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a model: architecture, sizes, head, labels, stored dtypes and parameter count.",
        discussion: """
        Example:
          megatron-bert info --model ./megatron-bert-cased-345m
        """
    )

    @Option(help: "Model directory, Megatron-LM .pt / NGC .zip, or Megatron-LM checkpoint directory.")
    var model: String

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        try reportingErrors {
            let source = try ModelSource.open(model)
            let loaded = try MegatronBERTModel(source: source)
            let c = loaded.config
            var fields: [(String, Any)] = [
                ("model_type", c.architecture.rawValue), ("architecture", c.architectures.first ?? "MegatronBert" + loaded.head.rawValue),
                ("head", loaded.head.rawValue), ("num_hidden_layers", c.numHiddenLayers), ("hidden_size", c.hiddenSize),
                ("num_attention_heads", c.numAttentionHeads), ("intermediate_size", c.intermediateSize),
                ("vocab_size", c.vocabSize), ("max_position_embeddings", c.maxPositionEmbeddings),
                ("type_vocab_size", c.typeVocabSize), ("hidden_act", c.hiddenAct), ("layer_norm_eps", c.layerNormEps),
                ("parameters", loaded.parameterCount), ("pooler", loaded.hasPooler),
                ("stored_dtypes", source.storedDTypes), ("format", source.format.rawValue),
            ]
            // What --device auto would run this model on.
            let (backend, note) = try Device.auto.open(dtype: .fp32)
            // The backend's own fields ("device" first), with the line saying why it was chosen after "device".
            let reported = backend.report().fields.map { ($0.key, $0.value as Any) }
            fields += reported.prefix(1) + [("device_note", note)] + reported.dropFirst()
            // The MEGATRON_BERT_* (and Python environment) variables set for this process, as read at its start.
            let settings = Settings.current
            fields.append(("settings", json ? settings.fields as Any
                                            : settings.values.isEmpty ? "none" : settings.fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))
            if !c.id2label.isEmpty {
                fields.append(("labels", c.id2label.sorted { $0.key < $1.key }.map(\.value)))
            }
            if json {
                let object = Dictionary(uniqueKeysWithValues: fields)
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                Console.line(String(decoding: data, as: UTF8.self))
            } else {
                for (key, value) in fields { Console.line("\(key): \(value)") }
            }
        }
    }
}
