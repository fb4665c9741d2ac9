import Foundation
import MegatronBackend

/// `nn.LayerNorm` over the last dimension as a forward/backward pair.
/// Shapes: x (N, D); gamma, beta (D) → y (N, D); saved: each row's mean and 1/σ (N).
/// In FP32 as PyTorch computes it, rows split across cores in fixed chunks (the same bits whatever the core count).
struct LayerNorm {
    let gamma: Parameter  // (D)
    let beta: Parameter  // (D)
    let epsilon: Double

    /// What the backward pass needs: per row, the mean and 1 / sqrt(variance + ε).
    struct Saved {
        var mean: [Float]
        var inverseDeviation: [Float]
    }

    static let rowsPerChunk = 32

    /// y = (x − mean) / sqrt(var + ε) · γ + β.
    func forward(_ x: Tensor) -> (y: Tensor, saved: Saved) {
        let d = gamma.count, n = x.count / d, eps = Float(epsilon)
        let y = Tensor(uninitializedShape: x.shape)
        var mean = [Float](repeating: 0, count: n), inverse = [Float](repeating: 0, count: n)
        mean.withUnsafeMutableBufferPointer { meanBuffer in
            inverse.withUnsafeMutableBufferPointer { inverseBuffer in
                let means = meanBuffer.baseAddress!, inverses = inverseBuffer.baseAddress!
                let g = gamma.value.data, b = beta.value.data
                inChunks(n, size: Self.rowsPerChunk) { rows in
                    for row in rows {
                        let v = x.data + row * d, out = y.data + row * d
                        let m = Rows.sum(v, d) / Float(d)
                        let r = 1 / (Rows.squaredDeviation(v, m, d) / Float(d) + eps).squareRoot()
                        for i in 0..<d { out[i] = (v[i] - m) * r * g[i] + b[i] }
                        means[row] = m
                        inverses[row] = r
                    }
                }
            }
        }
        return (y, Saved(mean: mean, inverseDeviation: inverse))
    }

    /// dy (N, D), x the forward's input → dx (N, D); adds Σ dy·x̂ to γ's gradient and Σ dy to β's.
    /// With x̂ = (x − mean)·r and g = dy·γ: dx = r · (g − mean(g) − x̂ · mean(g · x̂)).
    func backward(_ dy: Tensor, input x: Tensor, saved: Saved) -> Tensor {
        let d = gamma.count, n = x.count / d, size = Self.rowsPerChunk, chunks = (n + size - 1) / size
        let dx = Tensor(uninitializedShape: x.shape)
        // Per chunk of rows: Σ dy·x̂ and Σ dy (2·D), added in chunk order after.
        var partial = [Float](repeating: 0, count: chunks * 2 * d)
        partial.withUnsafeMutableBufferPointer { buffer in
            let partial = buffer.baseAddress!, gammaValues = gamma.value.data
            inChunks(n, size: size) { rows in
                let dGamma = partial + (rows.lowerBound / size) * 2 * d, dBeta = dGamma + d
                var g = [Float](repeating: 0, count: d), normed = [Float](repeating: 0, count: d)
                g.withUnsafeMutableBufferPointer { gBuffer in
                    normed.withUnsafeMutableBufferPointer { normedBuffer in
                        let g = gBuffer.baseAddress!, normed = normedBuffer.baseAddress!
                        for row in rows {
                            let v = x.data + row * d, grad = dy.data + row * d, out = dx.data + row * d
                            let m = saved.mean[row], r = saved.inverseDeviation[row]
                            for i in 0..<d {
                                normed[i] = (v[i] - m) * r
                                g[i] = grad[i] * gammaValues[i]
                                dGamma[i] += grad[i] * normed[i]
                                dBeta[i] += grad[i]
                            }
                            let gMean = Rows.sum(g, d) / Float(d), gNormedMean = Rows.dot(g, normed, d) / Float(d)
                            for i in 0..<d { out[i] = r * (g[i] - gMean - normed[i] * gNormedMean) }
                        }
                    }
                }
            }
        }
        for chunk in 0..<chunks {
            for i in 0..<d {
                gamma.gradient[i] += partial[chunk * 2 * d + i]
                beta.gradient[i] += partial[chunk * 2 * d + d + i]
            }
        }
        return dx
    }
}
