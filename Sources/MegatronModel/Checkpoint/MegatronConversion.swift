import BERTTokenizer
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
    /// A converted checkpoint: the Hugging Face config and tensors, what the conversion assumed, and what the
    /// checkpoint says of its tokenizer; `write(to:)` makes it a directory transformers loads.
    public struct Result: @unchecked Sendable {
        public var config: BertConfig
        /// Tensors under Hugging Face's `MegatronBertFor…` names.
        public var tensors: [String: StoredTensor]
        /// What the conversion assumed or left out, for the user to read.
        public var notes: [String]
        /// The checkpoint's `args.tokenizer_type` (e.g. `BertWordPieceLowerCase`), when it has args.
        public var tokenizerType: String?

        /// Whether the tokenizer lowercases: `stated` (the user's word) first, then the checkpoint's args, then the
        /// vocabulary's pieces, then the embedding rows; with a warning for weaker evidence that disagrees.
        public func casing(stated: TokenizerCasing? = nil, vocabulary: Vocabulary? = nil) -> (casing: TokenizerCasing, warnings: [String]) {
            TokenizerCasing.decide(stated: stated, tokenizerType: tokenizerType, vocabulary: vocabulary,
                                   embeddingRows: config.vocabSize)
        }
    }

    /// The tensors in another precision (floating-point tensors only; others unchanged).
    public static func cast(_ tensors: [String: StoredTensor], to dtype: DType) -> [String: StoredTensor] {
        tensors.mapValues { $0.converted(to: dtype.storage) }
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
            let files = try checkpointFiles(inDirectory: path)
            if files.count == 1 { return try load(path: files[0], heads: heads) }
            let ranks = try files.map { try TorchCheckpoint(path: $0) }
            var result = try convert(root: ranks[0].root, tensors: try mergeRanks(ranks), path: path, heads: heads)
            result.notes.append("merged \(ranks.count) tensor-parallel ranks")
            return result
        }
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        if bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4b,  // a zip: NGC download or torch's own archive
           let zip = try? ZipArchive(bytes: bytes, path: path),
           let inner = zip.entries.first(where: { $0.name.hasSuffix("model_optim_rng.pt") || $0.name.hasSuffix("model_rng.pt") }) {
            guard !zip.entries.contains(where: { $0.name.contains("mp_rank_01") }) else {
                throw ModelError(.unsupported, "\(path) holds a tensor-parallel checkpoint (mp_rank_01 …); merging ranks is not supported yet")
            }
            let contents = try zip.contents(of: inner)
            let checkpoint = try TorchCheckpoint(bytes: contents.bytes, owner: contents.owner ?? file, path: path + ":" + inner.name)
            return try convert(checkpoint, heads: heads)
        }
        return try convert(try TorchCheckpoint(bytes: bytes, owner: file, path: path), heads: heads)
    }

    /// `DIR/latest_checkpointed_iteration.txt` says "release" or an iteration N; the weights are then in
    /// `DIR/release/mp_rank_NN/model_optim_rng.pt` or `DIR/iter_000000N/mp_rank_NN/model_optim_rng.pt`,
    /// one file per tensor-parallel rank.
    static func checkpointFiles(inDirectory directory: String) throws -> [String] {
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
        var files: [String] = []
        for rank in 0..<1024 {
            let rankDirectory = (base as NSString).appendingPathComponent(String(format: "mp_rank_%02d", rank))
            guard FileManager.default.fileExists(atPath: rankDirectory) else { break }
            guard let file = ["model_optim_rng.pt", "model_rng.pt"].map({ (rankDirectory as NSString).appendingPathComponent($0) })
                .first(where: { FileManager.default.fileExists(atPath: $0) })
            else {
                throw ModelError("no model_optim_rng.pt in \(rankDirectory)")
            }
            files.append(file)
        }
        guard !files.isEmpty else { throw ModelError("no \(folder)/mp_rank_00/model_optim_rng.pt in \(directory)") }
        return files
    }

    /// Tensor-parallel ranks merged into one checkpoint's tensors: the fused QKV by heads, `dense_h_to_4h`,
    /// the word embeddings and the LM-head bias by rows, the attention output and `dense_4h_to_h` weights by
    /// columns; everything else is replicated (taken from rank 0).
    static func mergeRanks(_ ranks: [TorchCheckpoint]) throws -> [String: StoredTensor] {
        var version = 0.0
        if case .dict(let root) = ranks[0].root {
            if case .float(let v)? = root["checkpoint_version"] { version = v }
            if case .int(let v)? = root["checkpoint_version"] { version = Double(v) }
        }
        var merged: [String: StoredTensor] = [:]
        for (name, first) in ranks[0].tensors {
            let parts = try ranks.map { rank -> StoredTensor in
                guard let t = rank.tensors[name], t.dtype == first.dtype, t.shape.count == first.shape.count else {
                    throw ModelError("tensor-parallel rank \(rank.path) lacks '\(name)' or stores it differently")
                }
                return t
            }
            if name.hasSuffix("query_key_value.weight") || name.hasSuffix("query_key_value.bias") {
                // ≥ 1.0: heads are the outer dimension, so ranks simply follow each other; 0: [3, heads, hd].
                merged[name] = try version >= 1 ? concatenate(parts, name: name) : concatenateInThirds(parts, name: name)
            } else if name.hasSuffix("dense_h_to_4h.weight") || name.hasSuffix("dense_h_to_4h.bias")
                        || name.hasSuffix("word_embeddings.weight") || name.hasSuffix("lm_head.bias") {
                merged[name] = try concatenate(parts, name: name)
            } else if name.hasSuffix("attention.dense.weight") || name.hasSuffix("dense_4h_to_h.weight") {
                merged[name] = try concatenateColumns(parts, name: name)
            } else {
                merged[name] = first
            }
        }
        return merged
    }

    /// Along dimension 0.
    static func concatenate(_ parts: [StoredTensor], name: String) throws -> StoredTensor {
        let total = parts.reduce(0) { $0 + $1.bytes.count }
        let owned = OwnedBytes(count: total)
        var offset = 0
        for p in parts where p.bytes.count > 0 {
            guard Array(p.shape.dropFirst()) == Array(parts[0].shape.dropFirst()) else {
                throw ModelError("tensor-parallel parts of '\(name)' disagree in shape: \(p.shape) vs \(parts[0].shape)")
            }
            owned.pointer.baseAddress!.advanced(by: offset).copyMemory(from: p.bytes.baseAddress!, byteCount: p.bytes.count)
            offset += p.bytes.count
        }
        var shape = parts[0].shape
        shape[0] = parts.reduce(0) { $0 + $1.shape[0] }
        return StoredTensor(dtype: parts[0].dtype, shape: shape, bytes: owned.bytes, owner: owned)
    }

    /// Along dimension 1 of 2-D tensors.
    static func concatenateColumns(_ parts: [StoredTensor], name: String) throws -> StoredTensor {
        guard parts.allSatisfy({ $0.shape.count == 2 && $0.shape[0] == parts[0].shape[0] }) else {
            throw ModelError("tensor-parallel parts of '\(name)' are not 2-D with equal rows")
        }
        let rows = parts[0].shape[0], size = parts[0].dtype.size
        let columns = parts.reduce(0) { $0 + $1.shape[1] }
        let owned = OwnedBytes(count: rows * columns * size)
        var offset = 0
        for r in 0..<rows {
            for p in parts {
                let width = p.shape[1] * size
                owned.pointer.baseAddress!.advanced(by: offset)
                    .copyMemory(from: p.bytes.baseAddress!.advanced(by: r * width), byteCount: width)
                offset += width
            }
        }
        return StoredTensor(dtype: parts[0].dtype, shape: [rows, columns], bytes: owned.bytes, owner: owned)
    }

    /// checkpoint_version 0's fused QKV, [3, heads, hd, …]: each third of every rank, in turn.
    static func concatenateInThirds(_ parts: [StoredTensor], name: String) throws -> StoredTensor {
        guard parts.allSatisfy({ $0.shape[0] % 3 == 0 }) else { throw ModelError("'\(name)' is not three stacked blocks") }
        let total = parts.reduce(0) { $0 + $1.bytes.count }
        let owned = OwnedBytes(count: total)
        var offset = 0
        for third in 0..<3 {
            for p in parts {
                let block = p.bytes.count / 3
                owned.pointer.baseAddress!.advanced(by: offset).copyMemory(from: p.bytes.baseAddress!.advanced(by: third * block), byteCount: block)
                offset += block
            }
        }
        var shape = parts[0].shape
        shape[0] = parts.reduce(0) { $0 + $1.shape[0] }
        return StoredTensor(dtype: parts[0].dtype, shape: shape, bytes: owned.bytes, owner: owned)
    }

    /// Converts an already-read Megatron-LM checkpoint (`load(path:)` reads files, zips and directories first).
    /// - Parameter heads: attention heads, when the checkpoint has no `args` to say.
    /// - Throws: `ModelError` naming a missing or unknown tensor, or a shape that does not fit.
    public static func convert(_ checkpoint: TorchCheckpoint, heads: Int? = nil) throws -> Result {
        try convert(root: checkpoint.root, tensors: checkpoint.tensors, path: checkpoint.path, heads: heads)
    }

    /// Converts a checkpoint's unpickled object and its tensors (by dotted path).
    static func convert(root rootValue: PickleValue, tensors checkpointTensors: [String: StoredTensor], path: String,
                        heads: Int?) throws -> Result {
        var notes: [String] = []
        guard case .dict(let root) = rootValue else { throw ModelError("\(path): not a Megatron checkpoint (the top level is not a dict)") }
        guard let wordKey = checkpointTensors.keys.first(where: { $0.hasSuffix("language_model.embedding.word_embeddings.weight") }) else {
            throw ModelError("\(path): not a Megatron BERT checkpoint (no language_model.embedding.word_embeddings.weight)")
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

        var tensors = checkpointTensors
        var used = Set<String>()
        func take(_ name: String) throws -> StoredTensor {
            guard let t = tensors[name] else { throw ModelError("\(path): missing tensor '\(name)'") }
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
        guard layers > 0 else { throw ModelError("\(path): no transformer layers under \(encoder)") }
        let headCount: Int
        if let n = arg("num_attention_heads")?.int { headCount = n }
        else if let heads { headCount = heads }
        else {
            guard hidden % 64 == 0 else {
                throw ModelError("\(path) has no args to give the number of attention heads; pass it (--heads)")
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
        if tensors[lm + "embedding.tokentype_embeddings.weight"] != nil {
            try map(lm + "embedding.tokentype_embeddings.weight", "bert.embeddings.token_type_embeddings.weight")
        } else {
            // Megatron built without token types (num_tokentypes 0, as with --bert-no-binary-head) adds nothing
            // for them; HF's model always adds a row, so rows of zeros give exactly Megatron's sums.
            let zeros = OwnedBytes(count: 2 * hidden * word.dtype.size)
            zeros.pointer.initializeMemory(as: UInt8.self, repeating: 0)
            out["bert.embeddings.token_type_embeddings.weight"] = StoredTensor(dtype: word.dtype, shape: [2, hidden],
                                                                               bytes: zeros.bytes, owner: zeros)
            notes.append("no token-type embeddings (a model trained without them, e.g. --bert-no-binary-head): written as 2 rows of zeros, which add nothing, as in Megatron")
        }
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
            throw ModelError("\(path): tensors the conversion does not know: " + unused.prefix(8).map { "'\($0)'" }.joined(separator: ", "))
        }
        tensors = [:]
        let head: ModelHead = hasLMHead && hasBinaryHead ? .preTraining : hasLMHead ? .maskedLM : hasBinaryHead ? .nextSentencePrediction : .base
        if head == .base && !hasPooler { notes.append("no pooler") }
        if head == .maskedLM && hasPooler {
            // HF's MegatronBertForMaskedLM has no pooler; keeping it would make the directory fail to load.
            out["bert.pooler.dense.weight"] = nil
            out["bert.pooler.dense.bias"] = nil
            notes.append("the pooler is left out: without a binary head the model is MegatronBertForMaskedLM, which has none")
        }
        if hasBinaryHead && !hasPooler {
            throw ModelError("\(path): the checkpoint has a binary_head but no \(lm)pooler.dense.weight, which the next-sentence head reads")
        }
        let ffn = try out["bert.encoder.layer.0.intermediate.dense.weight"].map { $0.shape[0] }
            ?? { throw ModelError("no feed-forward weights") }()
        let positions = out["bert.embeddings.position_embeddings.weight"]?.shape.first ?? 0
        let types = out["bert.embeddings.token_type_embeddings.weight"]?.shape.first ?? 2
        if head == .base {  // a bare encoder: HF's MegatronBertModel names have no "bert." prefix
            out = Dictionary(uniqueKeysWithValues: out.map { (String($0.key.dropFirst("bert.".count)), $0.value) })
        }
        let config = BertConfig(architecture: .megatronBERT, vocabSize: vocab, hiddenSize: hidden, numHiddenLayers: layers,
                                numAttentionHeads: headCount, intermediateSize: ffn, hiddenAct: "gelu",
                                maxPositionEmbeddings: positions, typeVocabSize: types, layerNormEps: epsilon,
                                architectures: ["MegatronBert" + head.rawValue])
        return Result(config: config, tensors: out, notes: notes, tokenizerType: arg("tokenizer_type")?.string)
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
