import Foundation
import MegatronBackend

/// The activations as forward/backward pairs, element by element: GELU (exact erf, or the tanh approximation), ReLU
/// and tanh (the pooler's). Shapes: x (any) → y (the same).
enum Activations {
    /// y = act(x), a new tensor.
    static func forward(_ x: Tensor, _ activation: Activation) -> Tensor {
        let y = Tensor(shape: x.shape)
        for i in 0..<x.count { y.data[i] = Float(value(Double(x.data[i]), activation)) }
        return y
    }

    /// dy, x the forward's input → dx = dy · act′(x).
    static func backward(_ dy: Tensor, input x: Tensor, _ activation: Activation) -> Tensor {
        let dx = Tensor(shape: x.shape)
        for i in 0..<x.count { dx.data[i] = Float(Double(dy.data[i]) * derivative(Double(x.data[i]), activation)) }
        return dx
    }

    static let tanhScale = (2 / Double.pi).squareRoot()

    static func value(_ x: Double, _ activation: Activation) -> Double {
        switch activation {
        case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * x * (1 + Foundation.tanh(tanhScale * (x + 0.044715 * x * x * x)))
        case .relu: return max(x, 0)
        case .tanh: return Foundation.tanh(x)
        }
    }

    /// act′(x): GELU's Φ(x) + x φ(x); the tanh form's 0.5 (1 + t) + 0.5 x (1 − t²) √(2/π) (1 + 3·0.044715 x²).
    static func derivative(_ x: Double, _ activation: Activation) -> Double {
        switch activation {
        case .gelu:
            return 0.5 * (1 + erf(x / 2.0.squareRoot())) + x * exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
        case .geluTanh:
            let t = Foundation.tanh(tanhScale * (x + 0.044715 * x * x * x))
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * tanhScale * (1 + 3 * 0.044715 * x * x)
        case .relu:
            return x > 0 ? 1 : 0
        case .tanh:
            let t = Foundation.tanh(x)
            return 1 - t * t
        }
    }
}
