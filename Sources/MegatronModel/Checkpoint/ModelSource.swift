import Foundation
import TensorFiles
#if canImport(Glibc)
import Glibc
#endif

/// Any model path, opened in one place: a Hugging Face directory (`config.json` with `model.safetensors`,
/// sharded safetensors or `pytorch_model.bin`), one weight file beside its `config.json`, a Megatron-LM `.pt`,
/// NVIDIA's NGC `.zip`, or a Megatron-LM checkpoint directory (converted to Hugging Face names in memory).
/// It gives the config and views of the stored tensors; a backend prepares them into weights.
///
/// ```swift
/// let source = try ModelSource.open("/models/megatron-bert-cased-345m")
/// let model = try MegatronBERTModel(source: source, dtype: .fp16)
/// print(source.format, source.config.numHiddenLayers)
/// ```
public struct ModelSource: @unchecked Sendable {
    /// What kind of files the model came in.
    public enum Format: String, Sendable {
        /// A Hugging Face directory or weight file.
        case huggingFace = "hugging-face"
        /// A Megatron-LM or NGC checkpoint, converted in memory.
        case megatron
    }

    public let path: String
    public let format: Format
    public let config: BertConfig
    /// The tensors by Hugging Face name: views into memory-mapped files where the format allows.
    public let tensors: [String: StoredTensor]
    /// Where a tokenizer (vocab.txt, tokenizer.json, tokenizer_config.json) would sit beside the weights.
    public let tokenizerDirectory: String
    /// What a Megatron conversion assumed or left out (empty for Hugging Face files).
    public let notes: [String]
    /// The Megatron checkpoint's `args.tokenizer_type`, when it has args.
    public let tokenizerType: String?

    /// Opens `path`, whatever kind of model it is.
    /// - Parameter heads: attention heads, for Megatron checkpoints without args.
    /// - Throws: `ModelError` naming the path and what is wrong with it.
    public static func open(_ path: String, heads: Int? = nil) throws -> ModelSource {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = errno == ELOOP ? "it is a loop of symbolic links" : errno == ENOENT ? "it does not exist" : String(cString: strerror(errno))
            throw ModelError(.badInput, "cannot open the model \(path): \(reason)")
        }
        let isDirectory = info.st_mode & S_IFMT == S_IFDIR
        let tokenizerDirectory = isDirectory ? path : (path as NSString).deletingLastPathComponent.nonEmpty ?? "."
        if MegatronConversion.isMegatronPath(path) {
            let converted = try MegatronConversion.load(path: path, heads: heads)
            return ModelSource(path: path, format: .megatron, config: converted.config, tensors: converted.tensors,
                               tokenizerDirectory: tokenizerDirectory, notes: converted.notes,
                               tokenizerType: converted.tokenizerType)
        }
        let checkpoint = try CheckpointDirectory(path: path)
        return ModelSource(path: path, format: .huggingFace, config: checkpoint.config, tensors: checkpoint.tensors,
                           tokenizerDirectory: tokenizerDirectory, notes: [], tokenizerType: nil)
    }

    /// The stored element types of the tensors, sorted (e.g. `["F16"]`).
    public var storedDTypes: [String] { Set(tensors.values.map(\.dtype.rawValue)).sorted() }
}

extension String {
    /// nil for the empty string.
    var nonEmpty: String? { isEmpty ? nil : self }
}
