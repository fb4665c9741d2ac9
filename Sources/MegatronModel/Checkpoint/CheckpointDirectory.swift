import Foundation
import TensorFiles

/// A Hugging Face model directory: `config.json` and the weights in one of the layouts
/// `save_pretrained` writes — `model.safetensors`, sharded safetensors with `model.safetensors.index.json`,
/// or `pytorch_model.bin` (PyTorch zip format, optionally sharded with `pytorch_model.bin.index.json`).
///
/// ```swift
/// let checkpoint = try CheckpointDirectory(path: "/models/megatron-bert-cased-345m")
/// print(checkpoint.config.hiddenSize, checkpoint.tensors.count)
/// ```
public struct CheckpointDirectory: @unchecked Sendable {
    public let path: String
    public let config: BertConfig
    /// Every tensor in the weight files, by name.
    public let tensors: [String: StoredTensor]
    /// The weight files read.
    public let weightFiles: [String]

    /// Reads config.json and every weight file of a model directory, or one weight file beside its config.json.
    /// - Throws: `ModelError` naming what is missing or inconsistent (no weights, a tensor in two shards, …).
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError("model path \(path) does not exist")
        }
        var directory = path
        var explicitFile: String?
        if !isDirectory.boolValue {
            explicitFile = path
            directory = (path as NSString).deletingLastPathComponent
            if directory.isEmpty { directory = "." }
        }
        self.path = directory
        config = try BertConfig(path: (directory as NSString).appendingPathComponent("config.json"))

        let files = try explicitFile.map { [$0] } ?? Self.weightFiles(in: directory)
        var tensors: [String: StoredTensor] = [:]
        for file in files {
            for (name, tensor) in try Self.read(file) {
                guard tensors[name] == nil else {
                    throw ModelError("tensor '\(name)' appears in more than one weight file (\(file))")
                }
                tensors[name] = tensor
            }
        }
        self.tensors = tensors
        weightFiles = files
    }

    /// The weight files of a directory, in the order Hugging Face prefers them.
    static func weightFiles(in directory: String) throws -> [String] {
        func at(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let fm = FileManager.default
        if fm.fileExists(atPath: at("model.safetensors")) { return [at("model.safetensors")] }
        for index in ["model.safetensors.index.json", "pytorch_model.bin.index.json"] where fm.fileExists(atPath: at(index)) {
            return try shards(listedIn: at(index)).map(at)
        }
        if fm.fileExists(atPath: at("pytorch_model.bin")) { return [at("pytorch_model.bin")] }
        throw ModelError("no weights in \(directory): expected model.safetensors, model.safetensors.index.json or pytorch_model.bin")
    }

    /// The distinct shard file names of an index's `weight_map`, in first-seen order.
    static func shards(listedIn indexPath: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: indexPath),
              let index = try? JSONValue.parse(data), let map = index["weight_map"]?.object
        else {
            throw ModelError("\(indexPath): not a valid shard index (needs a \"weight_map\" object)")
        }
        var seen = Set<String>()
        var files: [String] = []
        for name in map.keys.sorted() {
            guard let file = map[name]?.string, !file.contains("/"), !file.isEmpty else {
                throw ModelError("\(indexPath): weight_map entry for '\(name)' is not a file name in the same directory")
            }
            if seen.insert(file).inserted { files.append(file) }
        }
        return files
    }

    /// Reads one weight file, by its extension (`.safetensors`, otherwise a PyTorch file).
    public static func read(_ file: String) throws -> [String: StoredTensor] {
        if file.hasSuffix(".safetensors") { return try SafeTensorsFile(path: file).tensors }
        return try TorchCheckpoint(path: file).tensors
    }
}
