import MegatronBackend

/// A trainable tensor under its Hugging Face name: FP32 master values and the gradient the backward passes add to
/// (the same shape). The optimizer's moments join it when the optimizer first steps.
///
/// ```swift
/// let weight = Parameter(name: "classifier.weight", shape: [2, 16], values: [Float](repeating: 0, count: 32))
/// weight.zeroGradient()
/// ```
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    /// The values, row-major.
    public let value: Tensor
    /// ∂loss/∂value, summed over the backward passes since `zeroGradient`.
    public let gradient: Tensor
    /// Whether weight decay applies (the HF Trainer's groups: not to biases and LayerNorm weights).
    public let decays: Bool

    public init(name: String, shape: [Int], values: [Float], decays: Bool = true) {
        self.name = name
        self.shape = shape
        self.decays = decays
        value = Tensor(shape: shape, values: values)
        gradient = Tensor(shape: shape)
    }

    public var count: Int { value.count }

    /// Sets the gradient to zero (before the next accumulation).
    public func zeroGradient() { gradient.data.update(repeating: 0, count: gradient.count) }
}
