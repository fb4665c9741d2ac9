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
            case .relu: VectorMath.apply(p, count: c) { $0.replacing(with: 0, where: $0 .< 0) }
            case .tanh: VectorMath.apply(p, count: c) { VectorMath.tanh($0) }
            }
        }
    }

    /// Row-wise softmax in place over `width`-wide rows, where `keep` (width) marks the keys that count;
    /// masked entries become 0. With no key kept every entry becomes 1/width, as HF's additive
    /// minimum-value mask gives.
    static func maskedSoftmax(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, keep: UnsafePointer<Float>) {
        var kept: Float = 0
        for j in 0..<width { kept += keep[j] }
        for r in 0..<rows {
            let row = x + r * width
            if kept == 0 {
                for j in 0..<width { row[j] = 1 / Float(width) }
                continue
            }
            var maximum = -Float.greatestFiniteMagnitude
            for j in 0..<width where keep[j] != 0 && row[j] > maximum { maximum = row[j] }
            VectorMath.apply(row, count: width) { VectorMath.exp($0 - maximum) }
            for j in 0..<width { row[j] = keep[j] != 0 ? row[j] : 0 }
            let inv = 1 / sum(row, count: width)
            for j in 0..<width { row[j] *= inv }
        }
    }

    /// The sum of n elements, in eight interleaved partial sums (so it vectorises).
    static func sum(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var partial = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            partial += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var total = partial.sum()
        while i < n { total += x[i]; i += 1 }
        return total
    }
}
