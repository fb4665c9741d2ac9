import MegatronBackend

/// `MegatronBertPooler`: `tanh(dense(h[:, 0]))`, weights `bert.pooler.dense`.
struct Pooler: Sendable {
    let dense: Linear  // (H, H)

    init(_ loader: WeightLoader, _ prefix: String, hidden: Int) throws {
        dense = try Linear(loader, prefix + ".dense", in: hidden, out: hidden)
    }

    /// hidden (rows, H) -> pooled (B, H), from each sequence's first token (the rows `firstRows`).
    func callAsFunction(_ hidden: any DeviceTensor, firstRows: [Int], on backend: any Backend) throws -> any DeviceTensor {
        let first = try backend.gatherRows(hidden, rows: firstRows)  // (B, H)
        let pooled = try dense(first, on: backend)
        try backend.activate(pooled, .tanh)
        return pooled
    }
}
