import CTrainingKernels
import Foundation
import MegatronBackend

/// The activations as forward/backward pairs, element by element: GELU (exact erf, or the tanh approximation), ReLU
/// and tanh (the pooler's). Shapes: x (any) → y (the same). In FP32 on eight lanes (`VectorMath`: the forward's floats
/// are the inference kernels'), chunks on every core.
enum Activations {
    typealias V = VectorMath.V

    /// y = act(x), a new tensor.
    static func forward(_ x: Tensor, _ activation: Activation) -> Tensor {
        let y = Tensor(uninitializedShape: x.shape)
        inChunks(x.count) { range in
            let out = y.data + range.lowerBound
            out.update(from: x.data + range.lowerBound, count: range.count)
            VectorMath.apply(out, count: range.count) { value($0, activation) }
        }
        return y
    }

    /// y = act(x) and act′(x) (what the backward pass multiplies by) in one pass: GELU's erf once per element.
    static func forwardWithDerivative(_ x: Tensor, _ activation: Activation) -> (y: Tensor, derivative: Tensor) {
        let y = Tensor(uninitializedShape: x.shape), derivative = Tensor(uninitializedShape: x.shape)
        if activation == .gelu {  // the FFN's: in C at the CPU's vector width (Swift's SIMD8 runs as SSE), the same bits
            inChunks(x.count) { range in
                let i = range.lowerBound
                mb_gelu_with_derivative(x.data + i, range.count, y.data + i, derivative.data + i)
            }
            return (y, derivative)
        }
        inChunks(x.count) { range in
            var i = range.lowerBound
            while i < range.upperBound {
                let n = min(8, range.upperBound - i)
                if n == 8 {
                    let (value, slope) = both(UnsafeRawPointer(x.data + i).loadUnaligned(as: V.self), activation)
                    UnsafeMutableRawPointer(y.data + i).storeBytes(of: value, as: V.self)
                    UnsafeMutableRawPointer(derivative.data + i).storeBytes(of: slope, as: V.self)
                } else {  // the tail through a zero-padded vector
                    var v = V()
                    for j in 0..<n { v[j] = x.data[i + j] }
                    let (value, slope) = both(v, activation)
                    for j in 0..<n {
                        y.data[i + j] = value[j]
                        derivative.data[i + j] = slope[j]
                    }
                }
                i += 8
            }
        }
        return (y, derivative)
    }

    /// dy and the forward's act′(x) → dx = dy · act′(x).
    static func backward(_ dy: Tensor, derivative: Tensor) -> Tensor {
        let dx = Tensor(uninitializedShape: dy.shape)
        inChunks(dy.count) { range in for i in range { dx.data[i] = dy.data[i] * derivative.data[i] } }
        return dx
    }

    /// dy, x the forward's input → dx = dy · act′(x).
    static func backward(_ dy: Tensor, input x: Tensor, _ activation: Activation) -> Tensor {
        let dx = Tensor(uninitializedShape: x.shape)
        inChunks(x.count) { range in
            let out = dx.data + range.lowerBound, grad = dy.data + range.lowerBound
            out.update(from: x.data + range.lowerBound, count: range.count)
            VectorMath.apply(out, count: range.count) { derivative($0, activation) }
            for i in 0..<range.count { out[i] *= grad[i] }
        }
        return dx
    }

    static let tanhScale: Float = 0.7978845608028654  // √(2/π)

    @inline(__always)
    static func value(_ x: V, _ activation: Activation) -> V {
        switch activation {
        case .gelu: return 0.5 * x * (1 + VectorMath.erf(x * 0.7071067811865476))
        case .geluTanh:
            let inner: V = tanhScale * (x + 0.044715 * x * x * x)
            return 0.5 * x * (1 + VectorMath.tanh(inner))
        case .relu: return x.replacing(with: 0, where: x .< 0)
        case .tanh: return VectorMath.tanh(x)
        }
    }

    /// act(x) and act′(x) together, sharing GELU's Φ(x).
    @inline(__always)
    static func both(_ x: V, _ activation: Activation) -> (V, V) {
        guard activation == .gelu else { return (value(x, activation), derivative(x, activation)) }
        let cdf: V = 0.5 * (1 + VectorMath.erf(x * 0.7071067811865476))
        let density: V = VectorMath.exp(-0.5 * x * x) * 0.3989422804014327
        return (x * cdf, cdf + x * density)
    }

    /// act′(x): GELU's Φ(x) + x φ(x); the tanh form's 0.5 (1 + t) + 0.5 x (1 − t²) √(2/π) (1 + 3·0.044715 x²).
    @inline(__always)
    static func derivative(_ x: V, _ activation: Activation) -> V {
        switch activation {
        case .gelu:
            let cdf: V = 0.5 * (1 + VectorMath.erf(x * 0.7071067811865476))
            let density: V = VectorMath.exp(-0.5 * x * x) * 0.3989422804014327
            return cdf + x * density
        case .geluTanh:
            let x2: V = x * x
            let inner: V = tanhScale * (x + 0.044715 * x2 * x)
            let t: V = VectorMath.tanh(inner)
            let slope: V = tanhScale * (1 + 0.134145 * x2)  // 3 · 0.044715
            let left: V = 0.5 * (1 + t)
            return left + 0.5 * x * (1 - t * t) * slope
        case .relu:
            return V(repeating: 0).replacing(with: 1, where: x .> 0)
        case .tanh:
            let t = VectorMath.tanh(x)
            return 1 - t * t
        }
    }
}
