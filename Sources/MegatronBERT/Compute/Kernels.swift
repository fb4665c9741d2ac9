#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Element-wise and row-wise kernels on FP32 rows. Shapes are written beside each: N rows of width D.
enum Kernels {
    /// out = LayerNorm(x) * gamma + beta over the last dimension. x, out: (N, D); gamma, beta: (D)
    static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width d: Int, gamma: [Float], beta: [Float],
                          epsilon: Float, into out: UnsafeMutablePointer<Float>) {
        gamma.withUnsafeBufferPointer { g in
            beta.withUnsafeBufferPointer { b in
                Parallel.forEach(rows, minimumPerThread: 16) { range in
                    for r in range {
                        let row = x + r * d, o = out + r * d
                        var sum: Float = 0
                        for i in 0..<d { sum += row[i] }
                        let mean = sum / Float(d)
                        var squares: Float = 0
                        for i in 0..<d { let c = row[i] - mean; squares += c * c }
                        let inv = 1 / (squares / Float(d) + epsilon).squareRoot()
                        for i in 0..<d { o[i] = (row[i] - mean) * inv * g[i] + b[i] }
                    }
                }
            }
        }
    }

    /// x += y, element-wise over n elements.
    static func add(_ y: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { x[i] += y[i] }
    }

    /// x = act(x) in place over n elements.
    static func activate(_ x: UnsafeMutablePointer<Float>, count n: Int, _ activation: Activation) {
        Parallel.forEach(n, minimumPerThread: 1 << 14) { range in
            let p = x + range.lowerBound, c = range.count
            switch activation {
            case .gelu: Activation.geluErf(p, count: c)
            case .geluTanh: Activation.geluTanh(p, count: c)
            case .relu: for i in 0..<c { p[i] = max(p[i], 0) }
            case .tanh: for i in 0..<c { p[i] = tanhf(p[i]) }
            }
        }
    }

    /// Row-wise softmax in place over the first `valid` entries of `rowLength`-wide rows where
    /// `keep[j]` is true; masked entries become 0 (all entries equal when nothing is kept, as HF's
    /// additive minimum-value mask gives).
    static func maskedSoftmax(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, keep: UnsafePointer<Bool>) {
        var anyKept = false
        for j in 0..<width where keep[j] { anyKept = true; break }
        for r in 0..<rows {
            let row = x + r * width
            if !anyKept {
                for j in 0..<width { row[j] = 1 / Float(width) }
                continue
            }
            var maximum = -Float.infinity
            for j in 0..<width where keep[j] { maximum = max(maximum, row[j]) }
            var sum: Float = 0
            for j in 0..<width {
                let e: Float = keep[j] ? expf(row[j] - maximum) : 0
                row[j] = e
                sum += e
            }
            let inv = 1 / sum
            for j in 0..<width { row[j] *= inv }
        }
    }
}
