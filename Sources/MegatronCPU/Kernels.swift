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
            case .gelu: VectorMath.geluErf(p, count: c)
            case .geluTanh: VectorMath.geluTanh(p, count: c)
            case .relu: VectorMath.apply(p, count: c) { $0.replacing(with: 0, where: $0 .< 0) }
            case .tanh: VectorMath.apply(p, count: c) { VectorMath.tanh($0) }
            }
        }
    }

    /// Row-wise unnormalised softmax in place: x[r, j] = keep[j]·exp(x[r, j] − max_j x[r, j]) over the kept
    /// keys, and `inverseSums[r]` = 1 / Σ_j x[r, j], so the caller scales the (narrower) product P·V instead
    /// of P. With no key kept every entry becomes 1 and the sum `width` (uniform attention, as HF's additive
    /// minimum-value mask gives). x: (rows, width); keep: (width) of 0/1; inverseSums: (rows).
    static func softmaxNumerators(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, keep: UnsafePointer<Float>,
                                  inverseSums: UnsafeMutablePointer<Float>) {
        var kept: Float = 0
        for j in 0..<width { kept += keep[j] }
        for r in 0..<rows {
            let row = x + r * width
            if kept == 0 {
                for j in 0..<width { row[j] = 1 }
                inverseSums[r] = 1 / Float(width)
                continue
            }
            let maximum = maskedMaximum(row, keep: keep, count: width)
            // One fused pass: e = exp(x − max), zero where masked, summed as it goes.
            var partial = SIMD8<Float>()
            var i = 0
            while i + 8 <= width {
                let raw = UnsafeMutableRawPointer(row + i)
                let k = UnsafeRawPointer(keep + i).loadUnaligned(as: SIMD8<Float>.self)
                let e = VectorMath.exp(raw.loadUnaligned(as: SIMD8<Float>.self) - maximum).replacing(with: 0, where: k .== 0)
                raw.storeBytes(of: e, as: SIMD8<Float>.self)
                partial += e
                i += 8
            }
            var total = partial.sum()
            if i < width {
                let rest = width - i
                var v = SIMD8<Float>(repeating: -.infinity)
                for j in 0..<rest { v[j] = keep[i + j] != 0 ? row[i + j] : -.infinity }
                let e = VectorMath.exp(v - maximum)
                for j in 0..<rest {
                    row[i + j] = keep[i + j] != 0 ? e[j] : 0
                    total += row[i + j]
                }
            }
            inverseSums[r] = 1 / total
        }
    }

    /// The largest x[j] with keep[j] ≠ 0 (at least one must be kept).
    static func maskedMaximum(_ x: UnsafePointer<Float>, keep: UnsafePointer<Float>, count n: Int) -> Float {
        var best = SIMD8<Float>(repeating: -.greatestFiniteMagnitude)
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            let k = UnsafeRawPointer(keep + i).loadUnaligned(as: SIMD8<Float>.self)
            best = best.replacing(with: v, where: (v .> best) .& (k .!= 0))
            i += 8
        }
        var maximum = best.max()
        while i < n {
            if keep[i] != 0 && x[i] > maximum { maximum = x[i] }
            i += 1
        }
        return maximum
    }
}
