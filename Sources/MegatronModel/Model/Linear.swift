import MegatronBackend

/// `nn.Linear(in, out)`: weight `<prefix>.weight` (out, in) and bias `<prefix>.bias` (out), prepared by the backend.
struct Linear: Sendable {
    let weight: any PreparedMatrix  // (out, in)
    let bias: (any PreparedVector)?  // (out)

    var inFeatures: Int { weight.shape[1] }
    var outFeatures: Int { weight.shape[0] }
    var parameterCount: Int { weight.shape.reduce(1, *) + (bias?.count ?? 0) }

    init(weight: any PreparedMatrix, bias: (any PreparedVector)?) {
        self.weight = weight
        self.bias = bias
    }

    init(_ loader: WeightLoader, _ prefix: String, in inFeatures: Int, out outFeatures: Int) throws {
        weight = try loader.matrix(prefix + ".weight", [outFeatures, inFeatures])
        bias = try loader.vector(prefix + ".bias", outFeatures)
    }

    /// Layers `prefixes` that read the same input as one: weights stacked (count · out, in), biases (count · out);
    /// its output holds each layer's `out` columns side by side, in the order of `prefixes`.
    init(_ loader: WeightLoader, stacking prefixes: [String], in inFeatures: Int, out outFeatures: Int) throws {
        (weight, bias) = try loader.stackedLinear(prefixes, in: inFeatures, out: outFeatures)
    }

    /// x (N, in) -> (N, out)
    func callAsFunction(_ x: any DeviceTensor, on backend: any Backend) throws -> any DeviceTensor {
        try backend.linear(x, weight: weight, bias: bias, accumulateInto: nil)
    }

    /// act(x Wᵀ + b): x (N, in) -> (N, out), the activation fused into the product where the backend can.
    func callAsFunction(_ x: any DeviceTensor, activation: Activation, on backend: any Backend) throws -> any DeviceTensor {
        try backend.linear(x, weight: weight, bias: bias, activation: activation)
    }

    /// y += x Wᵀ + b: x (N, in), y (N, out) — the residual connection fused into the product.
    func accumulate(_ x: any DeviceTensor, into y: any DeviceTensor, on backend: any Backend) throws {
        _ = try backend.linear(x, weight: weight, bias: bias, accumulateInto: y)
    }
}
