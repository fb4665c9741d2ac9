import MegatronBackend

/// Linear layers that read the same input (attention's query, key and value) as one product each way: their weights
/// stacked by rows, W = [W₁; W₂; …] (ΣM, K), their biases side by side.
/// Shapes: x (N, K) → y (N, ΣM) = x Wᵀ + b, each part's outputs in its own columns; backward dy (N, ΣM) → dx (N, K) =
/// dy W, each part's dW (M, K) and db (M) added to its own gradients.
struct StackedLinear {
    let parts: [Linear]
    var inFeatures: Int { parts[0].inFeatures }
    var outFeatures: Int { parts.reduce(0) { $0 + $1.outFeatures } }

    /// W (ΣM, K) and b (ΣM), copied from the parts (the weights change every step).
    func stacked() -> (weight: Tensor, bias: Tensor?) {
        let k = inFeatures, weight = Tensor(uninitializedShape: [outFeatures, k])
        let bias = parts.allSatisfy({ $0.bias != nil }) ? Tensor(uninitializedShape: [outFeatures]) : nil
        var row = 0
        for part in parts {
            Rows.copy(part.weight.value.data, into: weight.data + row * k, count: part.outFeatures * k)
            if let bias, let own = part.bias { (bias.data + row).update(from: own.value.data, count: part.outFeatures) }
            row += part.outFeatures
        }
        return (weight, bias)
    }

    func forward(_ x: Tensor, _ products: any MatrixProducts) -> Tensor {
        let k = inFeatures, m = outFeatures, n = x.count / k
        let (weight, bias) = stacked()
        let y = Tensor(uninitializedShape: [n, m])
        if let bias { Rows.broadcast(bias.data, into: y.data, rows: n, columns: m) }
        products.multiply(m: n, n: m, k: k, x.data, transposeA: false, weight.data, transposeB: true, into: y.data,
                          alpha: 1, beta: bias == nil ? 0 : 1)
        return y
    }

    func backward(_ dy: Tensor, input x: Tensor, _ products: any MatrixProducts) -> Tensor {
        let k = inFeatures, m = outFeatures, n = x.count / k
        let (weight, _) = stacked()
        let dx = Tensor(uninitializedShape: [n, k])
        products.multiply(m: n, n: k, k: m, dy.data, transposeA: false, weight.data, transposeB: false, into: dx.data,
                          alpha: 1, beta: 0)
        let dWeight = Tensor(uninitializedShape: [m, k])  // dyᵀ x, then each part's rows into its gradient
        products.multiply(m: m, n: k, k: n, dy.data, transposeA: true, x.data, transposeB: false, into: dWeight.data,
                          alpha: 1, beta: 0)
        let dBias = Tensor(shape: [m])
        Rows.addColumnSums(dy.data, rows: n, columns: m, into: dBias.data)
        var row = 0
        for part in parts {
            let gradient = part.weight.gradient.data, source = dWeight.data + row * k
            inChunks(part.outFeatures * k) { range in for i in range { gradient[i] += source[i] } }
            if let bias = part.bias {
                for j in 0..<part.outFeatures { bias.gradient.data[j] += dBias.data[row + j] }
            }
            row += part.outFeatures
        }
        return dx
    }
}
