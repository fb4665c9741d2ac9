/// `nn.LayerNorm(hidden_size, eps=layer_norm_eps)`: weights `<prefix>.weight`, `<prefix>.bias`.
struct LayerNorm: Sendable {
    let gamma: [Float]  // (D)
    let beta: [Float]  // (D)
    let epsilon: Float

    init(_ loader: WeightLoader, _ prefix: String, width: Int, epsilon: Double) throws {
        gamma = try loader.vector(prefix + ".weight", width)
        beta = try loader.vector(prefix + ".bias", width)
        self.epsilon = Float(epsilon)
    }

    /// x (rows, D) -> out (rows, D); out may be x.
    func apply(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        Kernels.layerNorm(x, rows: rows, width: gamma.count, gamma: gamma, beta: beta, epsilon: epsilon, into: out)
    }

    var parameterCount: Int { gamma.count + beta.count }

    /// x (rows, D) -> new (rows, D)
    func callAsFunction(_ x: Tensor, rows: Int) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape)
        apply(x.data, rows: rows, into: out.data)
        return out
    }
}

extension Linear {
    var parameterCount: Int { weight.count + (bias?.count ?? 0) }

    /// `nn.Linear(in, out)`: weights `<prefix>.weight` (out, in) and `<prefix>.bias` (out).
    init(_ loader: WeightLoader, _ prefix: String, in inFeatures: Int, out outFeatures: Int) throws {
        weight = try loader.matrix(prefix + ".weight", [outFeatures, inFeatures])
        bias = try loader.vector(prefix + ".bias", outFeatures)
    }
}
