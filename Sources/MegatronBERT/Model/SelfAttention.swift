import MegatronCompute

/// `MegatronBertSelfAttention` + `MegatronBertSelfOutput` (the same tensors as BERT's):
/// `attention.self.{query,key,value}` and `attention.output.dense`.
struct SelfAttention: Sendable {
    let query: Linear  // (H, H)
    let key: Linear  // (H, H)
    let value: Linear  // (H, H)
    let output: Linear  // (H, H)
    let heads: Int

    init(_ loader: WeightLoader, _ prefix: String, config: BertConfig) throws {
        let h = config.hiddenSize
        query = try Linear(loader, prefix + ".self.query", in: h, out: h)
        key = try Linear(loader, prefix + ".self.key", in: h, out: h)
        value = try Linear(loader, prefix + ".self.value", in: h, out: h)
        output = try Linear(loader, prefix + ".output.dense", in: h, out: h)
        heads = config.numAttentionHeads
    }

    /// x (rows, H) -> context (rows, H), before the output projection; `layout` says which rows are which sequence.
    func context(_ x: any DeviceTensor, layout: SequenceLayout, on backend: any Backend) throws -> any DeviceTensor {
        let q = try query(x, on: backend), k = try key(x, on: backend), v = try value(x, on: backend)  // (rows, H) each
        switch layout {
        case .padded(let b, let s, let keep):
            return try backend.attention(query: q, key: k, value: v, batch: b, sequence: s, heads: heads, keep: keep)
        case .packed(let segments):
            guard let packed = backend as? PackedAttention else {
                throw ModelError(.internal, "the \(backend.name) backend cannot run sequences packed without padding")
            }
            return try packed.attention(query: q, key: k, value: v, segments: segments, heads: heads)
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
