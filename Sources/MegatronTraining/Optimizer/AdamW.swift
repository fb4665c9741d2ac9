import Foundation
import MegatronBackend

/// AdamW as `torch.optim.AdamW` computes it: decoupled weight decay (p ← p − lr·λ·p), then Adam's step with bias
/// correction, p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε). Parameters that do not decay (the Hugging Face
/// Trainer's groups: biases and LayerNorm weights) skip the first part. Moments are FP32, created at the first step.
///
/// ```swift
/// var optimizer = AdamW(weightDecay: 0.01)
/// optimizer.step(model.trainableParameters, learningRate: schedule.rate(at: step))
/// ```
public struct AdamW: Sendable {
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double
    /// Optimizer steps taken (t).
    public private(set) var steps = 0
    /// m and v per parameter name.
    var moments: [String: (m: [Float], v: [Float])] = [:]

    /// The HF Trainer's defaults: β (0.9, 0.999), ε 1e-8, no weight decay.
    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// One step of every parameter by its gradient, at `learningRate`.
    public mutating func step(_ parameters: [Parameter], learningRate: Double) {
        steps += 1
        let t = Double(steps)
        let correction1 = 1 - pow(beta1, t), correction2 = (1 - pow(beta2, t)).squareRoot()
        let stepSize = learningRate / correction1
        for parameter in parameters {
            var (m, v) = moments[parameter.name] ?? ([Float](repeating: 0, count: parameter.count), [Float](repeating: 0, count: parameter.count))
            let p = parameter.value.data, g = parameter.gradient.data
            let decay = parameter.decays ? Float(1 - learningRate * weightDecay) : 1
            let b1 = Float(beta1), b2 = Float(beta2)
            for i in 0..<parameter.count {
                p[i] *= decay
                m[i] = b1 * m[i] + (1 - b1) * g[i]
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                let denominator = Double(v[i]).squareRoot() / correction2 + epsilon
                p[i] -= Float(stepSize * Double(m[i]) / denominator)
            }
            moments[parameter.name] = (m, v)
        }
    }
}

/// Gradient clipping by the global norm, as `torch.nn.utils.clip_grad_norm_`: every gradient scaled by
/// min(1, maxNorm / (‖g‖ + 1e-6)), ‖g‖ the 2-norm of all of them together.
/// - Returns: the norm before clipping.
@discardableResult
public func clipGradients(_ parameters: [Parameter], maxNorm: Double) -> Double {
    var squares = 0.0
    for parameter in parameters {
        for i in 0..<parameter.count { squares += Double(parameter.gradient.data[i]) * Double(parameter.gradient.data[i]) }
    }
    let norm = squares.squareRoot()
    let coefficient = Float(min(1, maxNorm / (norm + 1e-6)))
    if coefficient < 1 {
        for parameter in parameters {
            for i in 0..<parameter.count { parameter.gradient.data[i] *= coefficient }
        }
    }
    return norm
}
