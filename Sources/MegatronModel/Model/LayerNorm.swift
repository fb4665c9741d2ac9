import MegatronBackend

/// `nn.LayerNorm(hidden_size, eps=layer_norm_eps)`: weights `<prefix>.weight`, `<prefix>.bias`.
struct LayerNorm: Sendable {
    let gamma: any PreparedVector  // (D)
    let beta: any PreparedVector  // (D)
    let epsilon: Float

    init(_ loader: WeightLoader, _ prefix: String, width: Int, epsilon: Double) throws {
        gamma = try loader.vector(prefix + ".weight", width)
        beta = try loader.vector(prefix + ".bias", width)
        self.epsilon = Float(epsilon)
    }

    var parameterCount: Int { gamma.count + beta.count }

    /// x (N, D) -> a new (N, D).
    func callAsFunction(_ x: any DeviceTensor, on backend: any Backend) throws -> any DeviceTensor {
        try backend.layerNorm(x, residual: nil, gamma: gamma, beta: beta, epsilon: epsilon, inPlace: false)
    }

    /// x (N, D) normalised in place.
    func apply(_ x: any DeviceTensor, on backend: any Backend) throws {
        _ = try backend.layerNorm(x, residual: nil, gamma: gamma, beta: beta, epsilon: epsilon, inPlace: true)
    }
}
