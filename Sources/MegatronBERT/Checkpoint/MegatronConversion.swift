import Foundation
import TensorFiles

/// Megatron-LM / NVIDIA NGC BERT checkpoints → Hugging Face tensor names, without Python: the fused QKV
/// split per `checkpoint_version` (absent/0: [3, heads, hd]; 1.0: [heads, hd, 3]; ≥ 2.0: [heads, 3, hd]),
/// old and new key names (`transformer`/`attention`, `encoder`/`self_attention`), the config from `args`.
///
/// ```swift
/// let converted = try MegatronConversion.load(path: "megatron_bert_345m_v0.1_cased.zip")
/// let model = try MegatronBERTModel(config: converted.config, tensors: converted.tensors)
/// ```
public enum MegatronConversion {
    public struct Result: @unchecked Sendable {
        public var config: BertConfig
        /// Tensors under Hugging Face's `MegatronBertFor…` names.
        public var tensors: [String: StoredTensor]
        /// What the conversion assumed or left out, for the user to read.
        public var notes: [String]
        /// Whether the tokenizer lowercases (args' tokenizer_type is an uncased one).
        public var lowercase = false
    }

    /// The tensors in another precision (floating-point tensors only; others unchanged).
    public static func cast(_ tensors: [String: StoredTensor], to dtype: DType) throws -> [String: StoredTensor] {
        let target: StorageDType = dtype == .fp32 ? .float32 : dtype == .fp16 ? .float16 : .bfloat16
        return tensors.mapValues { t in
            guard t.dtype.isFloatingPoint, t.dtype != target else { return t }
            let values = WeightLoader.floats(t)
            let owned = OwnedBytes(count: values.count * target.size)
            let raw = owned.pointer.baseAddress!
            for (i, v) in values.enumerated() {
                switch target {
                case .float32: raw.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
                case .float16: raw.storeBytes(of: floatToHalf(v), toByteOffset: i * 2, as: UInt16.self)
                default: raw.storeBytes(of: floatToBFloat16(v), toByteOffset: i * 2, as: UInt16.self)
                }
            }
            return StoredTensor(dtype: target, shape: t.shape, bytes: owned.bytes, owner: owned)
        }
    }

    /// A `.zip` or `.pt` file with no config.json beside it, or a Megatron-LM checkpoint directory
    /// (`latest_checkpointed_iteration.txt`): what NGC and Megatron-LM write.
    public static func isMegatronPath(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return false }
        if isDirectory.boolValue {
            return FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("latest_checkpointed_iteration.txt"))
        }
        guard path.hasSuffix(".zip") || path.hasSuffix(".pt") else { return false }
        let config = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("config.json")
        return !FileManager.default.fileExists(atPath: config)
    }

    /// Reads an NGC zip (holding `…/mp_rank_00/model_optim_rng.pt`, stored or deflated) or a bare `.pt`.
    /// - Parameter heads: attention heads, when the checkpoint has no `args` to say.
    public static func load(path: String, heads: Int? = nil) throws -> Result {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return try load(path: try checkpointFile(inDirectory: path), heads: heads)
        }
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        if bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4b,  // a zip: NGC download or torch's own archive
           let zip = try? ZipArchive(bytes: bytes, path: path),
           let inner = zip.entries.first(where: { $0.name.hasSuffix("model_optim_rng.pt") || $0.name.hasSuffix("model_rng.pt") }) {
            guard !zip.entries.contains(where: { $0.name.contains("mp_rank_01") }) else {
                throw ModelError("\(path) holds a tensor-parallel checkpoint (mp_rank_01 …); merging ranks is not supported yet")
            }
            let contents = try zip.contents(of: inner)
            let checkpoint = try TorchCheckpoint(bytes: contents.bytes, owner: contents.owner ?? file, path: path + ":" + inner.name)
            return try convert(checkpoint, heads: heads)
        }
        return try convert(try TorchCheckpoint(bytes: bytes, owner: file, path: path), heads: heads)
    }

    /// `DIR/latest_checkpointed_iteration.txt` says "release" or an iteration N; the weights are then in
    /// `DIR/release/mp_rank_00/model_optim_rng.pt` or `DIR/iter_000000N/mp_rank_00/model_optim_rng.pt`.
    static func checkpointFile(inDirectory directory: String) throws -> String {
        let marker = (directory as NSString).appendingPathComponent("latest_checkpointed_iteration.txt")
        guard let text = try? String(contentsOfFile: marker, encoding: .utf8) else {
            throw ModelError("\(directory) is not a Megatron-LM checkpoint directory: no readable latest_checkpointed_iteration.txt")
        }
        let iteration = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let folder: String
        if iteration == "release" {
            folder = "release"
        } else if let n = Int(iteration), n >= 0 {
            folder = "iter_" + String(repeating: "0", count: max(0, 7 - String(n).count)) + String(n)
        } else {
            throw ModelError("\(marker) holds \"\(iteration)\", neither \"release\" nor an iteration number")
        }
        let base = (directory as NSString).appendingPathComponent(folder)
        if FileManager.default.fileExists(atPath: (base as NSString).appendingPathComponent("mp_rank_01")) {
            throw ModelError("\(base) holds a tensor-parallel checkpoint (mp_rank_01 …); merging ranks is not supported yet")
        }
        for name in ["model_optim_rng.pt", "model_rng.pt"] {
            let file = ((base as NSString).appendingPathComponent("mp_rank_00") as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: file) { return file }
        }
        throw ModelError("no \(folder)/mp_rank_00/model_optim_rng.pt in \(directory)")
    }

    public static func convert(_ checkpoint: TorchCheckpoint, heads: Int? = nil) throws -> Result {
        var notes: [String] = []
        guard case .dict(let root) = checkpoint.root else { throw ModelError("\(checkpoint.path): not a Megatron checkpoint (the top level is not a dict)") }
        guard let wordKey = checkpoint.tensors.keys.first(where: { $0.hasSuffix("language_model.embedding.word_embeddings.weight") }) else {
            throw ModelError("\(checkpoint.path): not a Megatron BERT checkpoint (no language_model.embedding.word_embeddings.weight)")
        }
        let prefix = String(wordKey.dropLast("language_model.embedding.word_embeddings.weight".count))
        let lm = prefix + "language_model."
        var version = 0.0
        switch root["checkpoint_version"] {
        case .float(let v)?: version = v
        case .int(let v)?: version = Double(v)
        default: notes.append("no checkpoint_version: the fused QKV is read as [3, heads, head_dim] (version 0)")
        }
        let args: PickleObject? = { if case .object(let o)? = root["args"] { return o } else { return nil } }()
        func arg(_ name: String) -> PickleValue? { args?.attribute(name) }

        var tensors = checkpoint.tensors
        var used = Set<String>()
        func take(_ name: String) throws -> StoredTensor {
            guard let t = tensors[name] else { throw ModelError("\(checkpoint.path): missing tensor '\(name)'") }
            used.insert(name)
            return t
        }
        let word = try take(wordKey)
        guard word.shape.count == 2 else { throw ModelError("word embeddings have shape \(word.shape), expected 2 dimensions") }
        let (vocab, hidden) = (word.shape[0], word.shape[1])
        let encoderName = tensors.keys.contains { $0.hasPrefix(lm + "encoder.") } ? "encoder" : "transformer"
        let encoder = lm + encoderName + "."
        let attention = tensors.keys.contains { $0.hasPrefix(encoder + "layers.0.self_attention.") } ? "self_attention" : "attention"
        var layers = 0
        while tensors[encoder + "layers.\(layers).input_layernorm.weight"] != nil { layers += 1 }
        guard layers > 0 else { throw ModelError("\(checkpoint.path): no transformer layers under \(encoder)") }
        let headCount: Int
        if let n = arg("num_attention_heads")?.int { headCount = n }
        else if let heads { headCount = heads }
        else {
            guard hidden % 64 == 0 else {
                throw ModelError("\(checkpoint.path) has no args to give the number of attention heads; pass it (--heads)")
            }
            headCount = hidden / 64
            notes.append("no args: assumed \(headCount) attention heads (head size 64, as Megatron-BERT uses)")
        }
        guard headCount > 0, hidden % headCount == 0 else { throw ModelError("hidden size \(hidden) is not a multiple of \(headCount) heads") }
        var epsilon = 1e-5
        switch arg("layernorm_epsilon") {
        case .float(let e)?: epsilon = e
        default: notes.append("layer_norm_eps set to 1e-5, what Megatron trains with (the args do not say; HF's converter would leave 1e-12)")
        }

        var out: [String: StoredTensor] = [:]
        func map(_ from: String, _ to: String) throws { out[to] = try take(from) }
        try map(lm + "embedding.position_embeddings.weight", "bert.embeddings.position_embeddings.weight")
        try map(lm + "embedding.tokentype_embeddings.weight", "bert.embeddings.token_type_embeddings.weight")
        out["bert.embeddings.word_embeddings.weight"] = word
        for i in 0..<layers {
            let m = encoder + "layers.\(i).", h = "bert.encoder.layer.\(i)."
            for kind in ["weight", "bias"] {
                try map(m + "input_layernorm." + kind, h + "attention.ln." + kind)
                let fused = try take(m + attention + ".query_key_value." + kind)
                let parts = try splitQKV(fused, version: version, heads: headCount, hidden: hidden, name: m + attention + ".query_key_value." + kind)
                out[h + "attention.self.query." + kind] = parts[0]
                out[h + "attention.self.key." + kind] = parts[1]
                out[h + "attention.self.value." + kind] = parts[2]
                try map(m + attention + ".dense." + kind, h + "attention.output.dense." + kind)
                try map(m + "post_attention_layernorm." + kind, h + "ln." + kind)
                try map(m + "mlp.dense_h_to_4h." + kind, h + "intermediate.dense." + kind)
                try map(m + "mlp.dense_4h_to_h." + kind, h + "output.dense." + kind)
            }
        }
        for kind in ["weight", "bias"] { try map(encoder + "final_layernorm." + kind, "bert.encoder.ln." + kind) }
        let hasPooler = tensors[lm + "pooler.dense.weight"] != nil
        if hasPooler { for kind in ["weight", "bias"] { try map(lm + "pooler.dense." + kind, "bert.pooler.dense." + kind) } }
        let hasLMHead = tensors[prefix + "lm_head.bias"] != nil
        if hasLMHead {
            try map(prefix + "lm_head.bias", "cls.predictions.bias")
            for kind in ["weight", "bias"] {
                try map(prefix + "lm_head.dense." + kind, "cls.predictions.transform.dense." + kind)
                try map(prefix + "lm_head.layernorm." + kind, "cls.predictions.transform.LayerNorm." + kind)
            }
        } else {
            notes.append("no lm_head: the converted model has no masked-LM head")
        }
        let hasBinaryHead = tensors[prefix + "binary_head.weight"] != nil
        if hasBinaryHead {
            for kind in ["weight", "bias"] { try map(prefix + "binary_head." + kind, "cls.seq_relationship." + kind) }
        } else {
            notes.append("no binary_head (trained with --bert-no-binary-head?): the converted model has no next-sentence head")
        }
        let unused = tensors.keys.filter { $0.hasPrefix(prefix) && !used.contains($0) }.sorted()
        guard unused.isEmpty else {
            throw ModelError("\(checkpoint.path): tensors the conversion does not know: " + unused.prefix(8).map { "'\($0)'" }.joined(separator: ", "))
        }
        tensors = [:]
        let head: ModelHead = hasLMHead && hasBinaryHead ? .preTraining : hasLMHead ? .maskedLM : hasBinaryHead ? .nextSentencePrediction : .base
        if head == .base && !hasPooler { notes.append("no pooler") }
        let ffn = try out["bert.encoder.layer.0.intermediate.dense.weight"].map { $0.shape[0] }
            ?? { throw ModelError("no feed-forward weights") }()
        let positions = out["bert.embeddings.position_embeddings.weight"]!.shape[0]
        let types = out["bert.embeddings.token_type_embeddings.weight"]!.shape[0]
        if head == .base {  // a bare encoder: HF's MegatronBertModel names have no "bert." prefix
            out = Dictionary(uniqueKeysWithValues: out.map { (String($0.key.dropFirst("bert.".count)), $0.value) })
        }
        let config = BertConfig(architecture: .megatronBERT, vocabSize: vocab, hiddenSize: hidden, numHiddenLayers: layers,
                                numAttentionHeads: headCount, intermediateSize: ffn, hiddenAct: "gelu",
                                maxPositionEmbeddings: positions, typeVocabSize: types, layerNormEps: epsilon,
                                architectures: ["MegatronBert" + head.rawValue])
        let tokenizerType = arg("tokenizer_type")?.string ?? ""
        if tokenizerType.isEmpty { notes.append("no tokenizer_type in args: the tokenizer is taken as cased") }
        return Result(config: config, tensors: out, notes: notes, lowercase: tokenizerType.lowercased().contains("lowercase"))
    }

    /// The fused QKV weight (3h, h) or bias (3h) as separate Q, K, V (h, h)/(h), per `checkpoint_version`.
    static func splitQKV(_ fused: StoredTensor, version: Double, heads: Int, hidden: Int, name: String) throws -> [StoredTensor] {
        guard fused.shape.first == 3 * hidden, fused.shape.count <= 2 else {
            throw ModelError("'\(name)' has shape \(fused.shape), expected [\(3 * hidden), …]")
        }
        let hd = hidden / heads
        let rowBytes = (fused.shape.count == 2 ? fused.shape[1] : 1) * fused.dtype.size
        return (0..<3).map { s in
            let owned = OwnedBytes(count: hidden * rowBytes)
            for n in 0..<heads {
                for d in 0..<hd {
                    let source: Int
                    if version < 1 { source = (s * heads + n) * hd + d }  // [3, heads, hd]
                    else if version < 2 { source = (n * hd + d) * 3 + s }  // [heads, hd, 3]
                    else { source = (n * 3 + s) * hd + d }  // [heads, 3, hd]
                    owned.pointer.baseAddress!.advanced(by: (n * hd + d) * rowBytes)
                        .copyMemory(from: fused.bytes.baseAddress!.advanced(by: source * rowBytes), byteCount: rowBytes)
                }
            }
            var shape = fused.shape
            shape[0] = hidden
            return StoredTensor(dtype: fused.dtype, shape: shape, bytes: owned.bytes, owner: owned)
        }
    }
}
