import Foundation
import MegatronBackend
import MegatronModel
import TensorFiles

extension TrainableModel {
    /// The files a trained model's directory holds; a directory with anything else in it is not replaced.
    static let writtenFiles: Set<String> = ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
                                            "tokenizer.json", "special_tokens_map.json", "metrics.jsonl"]

    /// Writes the model as a Hugging Face directory that transformers' `AutoModelForSequenceClassification` (or
    /// `…ForTokenClassification`, `…ForQuestionAnswering`) and our `classify` (`ner`, `qa`) and `serve` load:
    /// config.json (`architectures` `MegatronBertForSequenceClassification` or `BertForSequenceClassification`, or
    /// `…ForTokenClassification`, `…ForQuestionAnswering`, `id2label` / `label2id`, `problem_type` but for QA), model.safetensors (FP32, every
    /// parameter under its name) and the tokenizer's files copied from `tokenizerDirectory`. Whole or not at all
    /// (`ModelDirectoryWriter`).
    ///
    /// ```swift
    /// try model.write(to: "./my-classifier", labels: ["negative", "positive"], problemType: .crossEntropy,
    ///                 tokenizerDirectory: source.tokenizerDirectory)
    /// ```
    /// - Parameter metrics: the lines of `metrics.jsonl` written beside the model (none: no file).
    public func write(to directory: String, labels: [String], problemType: Loss, tokenizerDirectory: String?,
                      metrics: [String] = []) throws {
        try ModelDirectoryWriter(directory: directory, files: Self.writtenFiles, writer: "fine-tune",
                                 advice: "write the model into a new or empty directory").write { staging in
            try writeFiles(into: staging, labels: labels, problemType: problemType, tokenizerDirectory: tokenizerDirectory,
                           metrics: metrics)
        }
    }

    /// Writes the model's files (config.json, model.safetensors, the tokenizer's, metrics.jsonl when `metrics` has
    /// lines) into the existing directory `staging`.
    func writeFiles(into staging: URL, labels: [String], problemType: Loss, tokenizerDirectory: String?, metrics: [String]) throws {
        var config = self.config
        config.architectures = [(config.architecture == .megatronBERT ? "MegatronBert" : "Bert") + head.rawValue]
        config.id2label = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($0.offset, $0.element) })
        config.numLabels = labels.count
        // problem_type is sequence classification's; transformers' QA and multiple-choice losses are fixed.
        config.problemType = head == .questionAnswering || head == .multipleChoice ? nil : problemType.rawValue
        try config.jsonData().write(to: staging.appendingPathComponent("config.json"))
        try SafeTensorsFile.write(Self.stored(parameterList.map { ($0.name, $0.value) }),
                                  to: staging.appendingPathComponent("model.safetensors").path, metadata: ["format": "pt"])
        if !metrics.isEmpty {
            try Data(metrics.map { $0 + "\n" }.joined().utf8).write(to: staging.appendingPathComponent("metrics.jsonl"))
        }
        guard let tokenizerDirectory else { return }
        for name in ["vocab.txt", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"] {
            let source = (tokenizerDirectory as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: source) {
                try FileManager.default.copyItem(atPath: source, toPath: staging.appendingPathComponent(name).path)
            }
        }
    }

    /// FP32 tensors as stored tensors (copies) under their names.
    static func stored(_ tensors: [(String, Tensor)]) -> [String: StoredTensor] {
        var stored: [String: StoredTensor] = [:]
        for (name, tensor) in tensors {
            let owned = OwnedBytes(count: tensor.count * 4)
            owned.pointer.copyMemory(from: UnsafeRawBufferPointer(start: tensor.data, count: tensor.count * 4))
            stored[name] = StoredTensor(dtype: .float32, shape: tensor.shape,
                                        bytes: UnsafeRawBufferPointer(rebasing: owned.bytes[0..<(tensor.count * 4)]), owner: owned)
        }
        return stored
    }
}
