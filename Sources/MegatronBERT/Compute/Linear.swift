/// `y = x Wᵀ + b`, the `nn.Linear` of PyTorch, on OpenBLAS's SGEMM.
/// Half-precision weights are widened in blocks of output rows into a small scratch buffer.
struct Linear: Sendable {
    let weight: Weight  // (out, in)
    let bias: [Float]?  // (out)

    var inFeatures: Int { weight.shape[1] }
    var outFeatures: Int { weight.shape[0] }

    /// Elements of a half-precision weight widened per SGEMM call (bounds each core's scratch to 4 MB).
    static let widenBlockElements = 1 << 20

    /// x (rows, in) -> (rows, out)
    func callAsFunction(_ x: Tensor, rows: Int) -> Tensor {
        let y = Tensor(uninitializedShape: [rows, outFeatures])
        apply(x.data, rows: rows, inputStride: inFeatures, into: y.data, outputStride: outFeatures)
        return y
    }

    /// y += x Wᵀ + b: x (rows, in), y (rows, out) — the residual connection fused into the product.
    func accumulate(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        apply(x, rows: rows, inputStride: inFeatures, into: y, outputStride: outFeatures, accumulate: true)
    }

    /// The product on raw rows: `input` rows are `inputStride` apart, `output` rows `outputStride` apart.
    /// With `accumulate`, the result is added to what `output` holds.
    func apply(_ input: UnsafePointer<Float>, rows: Int, inputStride: Int,
               into output: UnsafeMutablePointer<Float>, outputStride: Int, accumulate: Bool = false) {
        let n = outFeatures, k = inFeatures
        guard rows > 0 else { return }
        bias.withUnsafeBufferPointerOrNil { bias in
            if case .fp32(let w) = weight.storage {
                Matmul.multiplyTransposed(m: rows, n: n, k: k, input, lda: inputStride, w, ldb: k,
                                          bias: bias, accumulate: accumulate, output, ldc: outputStride)
                return
            }
            // Half-precision weights: each core widens its own blocks of output rows and multiplies them.
            let block = max(16, min((n + Parallel.cores - 1) / Parallel.cores, Self.widenBlockElements / max(k, 1)))
            let blocks = (n + block - 1) / block
            Parallel.forEach(blocks) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
                defer { scratch.deallocate() }
                for index in range {
                    let start = index * block, m = min(block, n - start)
                    weight.widen(from: start * k, count: m * k, into: scratch)
                    Matmul.multiplyBlock(m: rows, columns: start..<(start + m), k: k, input, lda: inputStride,
                                         scratch, ldb: k, bias: bias, accumulate: accumulate,
                                         output, ldc: outputStride)
                }
            }
        }
    }
}

extension Optional where Wrapped == [Float] {
    /// Calls `body` with the array's base address, or nil.
    func withUnsafeBufferPointerOrNil<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let array): array.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: body(nil)
        }
    }
}
