import CTrainingKernels
import Foundation
import MegatronBackend

/// AdamW as `torch.optim.AdamW` computes it: decoupled weight decay (p ← p − lr·λ·p), then Adam's step with bias
/// correction, p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε). Parameters that do not decay (the Hugging Face
/// Trainer's groups: biases and LayerNorm weights) skip the first part. Moments are FP32, created at the first step.
///
/// ```swift
/// var optimizer = AdamW(weightDecay: 0.01)
/// optimizer.clippedStep(model.trainableParameters, learningRate: schedule.rate(at: step), maxNorm: 1)
/// ```
public struct AdamW: Sendable {
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double
    /// Optimizer steps taken (t).
    public private(set) var steps = 0
    /// m and v per parameter name (tensors: updated in place, never copied).
    var moments: [String: (m: Tensor, v: Tensor)] = [:]

    /// The HF Trainer's defaults: β (0.9, 0.999), ε 1e-8, no weight decay.
    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// One step of every parameter by its gradient times `gradientScale`, at `learningRate`. In FP32 as torch
    /// computes it for FP32 parameters (`mb_adamw_update`: the same bits at every vector width), split across cores
    /// in chunks. With `zeroingGradients`, each gradient is set to zero as it is read (the next accumulation's start,
    /// without a pass of its own).
    public mutating func step(_ parameters: [Parameter], learningRate: Double, gradientScale: Float = 1, zeroingGradients: Bool = false) {
        steps += 1
        let t = Double(steps)
        let correction2 = Float((1 - pow(beta2, t)).squareRoot())
        let stepSize = Float(learningRate / (1 - pow(beta1, t)))
        let b1 = Float(beta1), b2 = Float(beta2), eps = Float(epsilon)
        for parameter in parameters {
            let (mTensor, vTensor) = moments[parameter.name] ?? (Tensor(shape: parameter.shape), Tensor(shape: parameter.shape))
            moments[parameter.name] = (mTensor, vTensor)
            let p = parameter.value.data, g = parameter.gradient.data, m = mTensor.data, v = vTensor.data
            let decay = parameter.decays ? Float(1 - learningRate * weightDecay) : 1
            inChunks(parameter.count) { range in
                let i = range.lowerBound
                mb_adamw_update(p + i, g + i, m + i, v + i, range.count, gradientScale, zeroingGradients ? 1 : 0, decay,
                                b1, b2, stepSize, correction2, eps)
            }
        }
    }

    /// What the HF Trainer does at each optimizer step: the gradients clipped to a global norm of `maxNorm` (as
    /// `torch.nn.utils.clip_grad_norm_`: scaled by min(1, maxNorm / (‖g‖ + 1e-6))), AdamW's step, the gradients zeroed —
    /// with the scaling and the zeroing inside the step's one pass over them.
    /// - Returns: the gradients' norm before clipping.
    @discardableResult
    public mutating func clippedStep(_ parameters: [Parameter], learningRate: Double, maxNorm: Double) -> Double {
        let norm = gradientNorm(parameters)
        step(parameters, learningRate: learningRate, gradientScale: Float(min(1, maxNorm / (norm + 1e-6))), zeroingGradients: true)
        return norm
    }
}

extension AdamW {
    /// The moments under torch's names (`NAME.exp_avg`, `NAME.exp_avg_sq`), for a checkpoint.
    var momentTensors: [(String, Tensor)] {
        moments.keys.sorted().flatMap { name in [(name + ".exp_avg", moments[name]!.m), (name + ".exp_avg_sq", moments[name]!.v)] }
    }

    /// Takes the step count and the moments back from a checkpoint: for each of `parameters` that has moments there,
    /// both, of its shape.
    mutating func restore(steps: Int, tensors: [String: StoredTensor], parameters: [Parameter]) throws {
        self.steps = steps
        moments = [:]
        for parameter in parameters {
            let m = tensors[parameter.name + ".exp_avg"], v = tensors[parameter.name + ".exp_avg_sq"]
            guard let m, let v else {
                if m == nil && v == nil && steps == 0 { continue }
                throw TrainingError("the checkpoint's optimizer state has no moments for \(parameter.name)")
            }
            guard m.shape == parameter.shape, v.shape == parameter.shape else {
                throw TrainingError("the checkpoint's optimizer moments for \(parameter.name) have shape \(m.shape), not \(parameter.shape)")
            }
            moments[parameter.name] = (Tensor(shape: m.shape, values: m.toFloats()), Tensor(shape: v.shape, values: v.toFloats()))
        }
    }
}

/// The global 2-norm of the gradients, ‖g‖ over all of them together (what clipping reads): per chunk on every core,
/// the chunks' sums added in order (the same bits every run).
public func gradientNorm(_ parameters: [Parameter]) -> Double {
    var squares = 0.0
    for parameter in parameters {
        let g = parameter.gradient.data, chunk = 1 << 16
        let sums = [Double](unsafeUninitializedCapacity: (parameter.count + chunk - 1) / chunk) { out, initialized in
            let out = out
            inChunks(parameter.count) { range in
                var lanes = SIMD8<Double>(), i = range.lowerBound
                while i + 8 <= range.upperBound {
                    let x = SIMD8<Double>(UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self))
                    lanes += x * x
                    i += 8
                }
                var sum = lanes.sum()
                while i < range.upperBound { sum += Double(g[i]) * Double(g[i]); i += 1 }
                out[range.lowerBound / chunk] = sum
            }
            initialized = (parameter.count + chunk - 1) / chunk
        }
        squares += sums.reduce(0, +)
    }
    return squares.squareRoot()
}
