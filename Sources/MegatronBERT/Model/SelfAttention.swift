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

    /// x (B·S, H) -> context (B·S, H), before the output projection.
    /// `keep[b]` (S) is 1 for the keys of row b that are real tokens (attention_mask == 1), else 0.
    func context(_ x: any DeviceTensor, batch b: Int, sequence s: Int, keep: [[Float]], on backend: any Backend) throws -> any DeviceTensor {
        let q = try query(x, on: backend), k = try key(x, on: backend), v = try value(x, on: backend)  // (B·S, H) each
        return try backend.attention(query: q, key: k, value: v, batch: b, sequence: s, heads: heads, keep: keep)
    }
}
