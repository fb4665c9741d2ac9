import MegatronCompute

/// `MegatronBertPooler`: `tanh(dense(h[:, 0]))`, weights `bert.pooler.dense`.
struct Pooler: Sendable {
    let dense: Linear  // (H, H)

    init(_ loader: WeightLoader, _ prefix: String, hidden: Int) throws {
        dense = try Linear(loader, prefix + ".dense", in: hidden, out: hidden)
    }

    /// hidden (B·S, H) -> pooled (B, H), from each row's first token.
    func callAsFunction(_ hidden: any DeviceTensor, batch b: Int, sequence s: Int, on backend: any Backend) throws -> any DeviceTensor {
        let first = try backend.gatherRows(hidden, rows: (0..<b).map { $0 * s })  // (B, H)
        let pooled = try dense(first, on: backend)
        try backend.activate(pooled, .tanh)
        return pooled
    }
}
