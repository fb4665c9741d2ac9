import MegatronBackend

/// `MegatronBertSelfAttention` + `MegatronBertSelfOutput` (the same tensors as BERT's):
/// `attention.self.{query,key,value}` and `attention.output.dense`.
struct SelfAttention: Sendable {
    /// query, key and value as one product: weights stacked (3H, H), output (rows, 3H) = Q | K | V.
    let qkv: Linear
    let output: Linear  // (H, H)
    let heads: Int

    init(_ loader: WeightLoader, _ prefix: String, config: BertConfig) throws {
        let h = config.hiddenSize
        qkv = try Linear(loader, stacking: ["query", "key", "value"].map { prefix + ".self." + $0 }, in: h, out: h)
        output = try Linear(loader, prefix + ".output.dense", in: h, out: h)
        heads = config.numAttentionHeads
    }

    /// x (rows, H) -> context (rows, H), before the output projection; `layout` says which rows are which sequence.
    func context(_ x: any DeviceTensor, layout: SequenceLayout, on backend: any Backend) throws -> any DeviceTensor {
        let qkv = try qkv(x, on: backend)  // (rows, 3H)
        switch layout {
        case .padded(let b, let s, let keep):
            return try backend.attention(qkv: qkv, batch: b, sequence: s, heads: heads, keep: keep)
        case .packed(let segments):
            guard backend.capabilities.packedSequences else {
                throw ModelError(.internal, "the \(backend.name) backend cannot run sequences packed without padding")
            }
            return try backend.attention(qkv: qkv, segments: segments, heads: heads)
        }
    }
}

/// How a forward pass lays its sequences out in its (rows, H) activations.
enum SequenceLayout {
    /// (B·S, H): B sequences padded to S tokens; `keep[b]` (S) is 1 for the keys of row b that are real tokens
    /// (attention_mask == 1), else 0.
    case padded(batch: Int, sequence: Int, keep: [[Float]])
    /// (Σ lengths, H): the sequences end to end, sequence i in rows `segments[i]`, no padding.
    case packed(segments: [Range<Int>])
}
