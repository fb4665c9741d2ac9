/// `MegatronBertPooler`: `tanh(dense(h[:, 0]))`, weights `bert.pooler.dense`.
struct Pooler: Sendable {
    let dense: Linear  // (H, H)

    init(_ loader: WeightLoader, _ prefix: String, hidden: Int) throws {
        dense = try Linear(loader, prefix + ".dense", in: hidden, out: hidden)
    }

    /// hidden (B·S, H) -> pooled (B, H), from each row's first token.
    func callAsFunction(_ hidden: Tensor, batch b: Int, sequence s: Int) -> Tensor {
        let h = dense.inFeatures
        let pooled = Tensor(uninitializedShape: [b, h])
        dense.apply(hidden.data, rows: b, inputStride: s * h, into: pooled.data, outputStride: h)
        Kernels.activate(pooled.data, count: pooled.count, .tanh)
        return pooled
    }
}
