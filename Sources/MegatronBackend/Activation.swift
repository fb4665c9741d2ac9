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
}
