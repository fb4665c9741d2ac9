/// The activation functions of `hidden_act` (and the pooler's tanh).
public enum Activation: String, Sendable {
    /// `gelu`: x·Φ(x) with the exact erf.
    case gelu
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    case geluTanh
    case relu
    case tanh

    /// Parses a config's `hidden_act`.
    public init?(configName: String) {
        switch configName {
        case "gelu", "gelu_python": self = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate": self = .geluTanh
        case "relu": self = .relu
        case "tanh": self = .tanh
        default: return nil
        }
    }

    /// x·½(1 + erf(x/√2)) in place.
    static func geluErf(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        VectorMath.apply(x, count: n) { v in 0.5 * v * (1 + VectorMath.erf(v * 0.7071067811865476)) }
    }

    /// ½x(1 + tanh(√(2/π)(x + 0.044715x³))) in place.
    static func geluTanh(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        VectorMath.apply(x, count: n) { v in
            0.5 * v * (1 + VectorMath.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
        }
    }
}
