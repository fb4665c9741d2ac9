import Foundation
import MegatronBackend

/// `nn.LayerNorm` over the last dimension as a forward/backward pair.
/// Shapes: x (N, D); gamma, beta (D) → y (N, D); saved: each row's mean and 1/σ (N).
struct LayerNorm {
    let gamma: Parameter  // (D)
    let beta: Parameter  // (D)
    let epsilon: Double

    /// What the backward pass needs: per row, the mean and 1 / sqrt(variance + ε).
    struct Saved {
        var mean: [Double]
        var inverseDeviation: [Double]
    }

    /// y = (x − mean) / sqrt(var + ε) · γ + β, the statistics in Double.
    func forward(_ x: Tensor) -> (y: Tensor, saved: Saved) {
        let d = gamma.count, n = x.count / d
        let y = Tensor(shape: x.shape)
        var saved = Saved(mean: [Double](repeating: 0, count: n), inverseDeviation: [Double](repeating: 0, count: n))
        for row in 0..<n {
            let v = x.data + row * d, out = y.data + row * d
            var sum = 0.0
            for i in 0..<d { sum += Double(v[i]) }
            let mean = sum / Double(d)
            var squares = 0.0
            for i in 0..<d { squares += (Double(v[i]) - mean) * (Double(v[i]) - mean) }
            let inverse = 1 / (squares / Double(d) + epsilon).squareRoot()
            for i in 0..<d { out[i] = Float((Double(v[i]) - mean) * inverse * Double(gamma.value[i]) + Double(beta.value[i])) }
            saved.mean[row] = mean
            saved.inverseDeviation[row] = inverse
        }
        return (y, saved)
    }

    /// dy (N, D), x the forward's input → dx (N, D); adds Σ dy·x̂ to γ's gradient and Σ dy to β's.
    /// With x̂ = (x − mean)·r and g = dy·γ: dx = r · (g − mean(g) − x̂ · mean(g · x̂)).
    func backward(_ dy: Tensor, input x: Tensor, saved: Saved) -> Tensor {
        let d = gamma.count, n = x.count / d
        let dx = Tensor(shape: x.shape)
        var dGamma = [Double](repeating: 0, count: d), dBeta = [Double](repeating: 0, count: d)
        var g = [Double](repeating: 0, count: d), normed = [Double](repeating: 0, count: d)
        for row in 0..<n {
            let v = x.data + row * d, grad = dy.data + row * d, out = dx.data + row * d
            let mean = saved.mean[row], r = saved.inverseDeviation[row]
            var gMean = 0.0, gNormedMean = 0.0
            for i in 0..<d {
                normed[i] = (Double(v[i]) - mean) * r
                g[i] = Double(grad[i]) * Double(gamma.value[i])
                gMean += g[i]
                gNormedMean += g[i] * normed[i]
                dGamma[i] += Double(grad[i]) * normed[i]
                dBeta[i] += Double(grad[i])
            }
            gMean /= Double(d)
            gNormedMean /= Double(d)
            for i in 0..<d { out[i] = Float(r * (g[i] - gMean - normed[i] * gNormedMean)) }
        }
        for i in 0..<d {
            gamma.gradient[i] += Float(dGamma[i])
            beta.gradient[i] += Float(dBeta[i])
        }
        return dx
    }
}
