import MegatronBackend

/// `nn.Linear` as a forward/backward pair: y = x Wᵀ + b.
/// Shapes: x (N, K), weight (M, K), bias (M) → y (N, M).
struct Linear {
    let weight: Parameter  // (M, K)
    let bias: Parameter?  // (M)
    var inFeatures: Int { weight.shape[1] }
    var outFeatures: Int { weight.shape[0] }

    /// y (N, M) = x (N, K) Wᵀ + b. Saves nothing: the backward pass takes x again.
    func forward(_ x: Tensor, _ products: any MatrixProducts) -> Tensor {
        let k = inFeatures, m = outFeatures, n = x.count / k
        let y = Tensor(uninitializedShape: [n, m])
        if let bias { Rows.broadcast(bias.value.data, into: y.data, rows: n, columns: m) }
        products.multiply(m: n, n: m, k: k, x.data, transposeA: false, weight.value.data, transposeB: true, into: y.data,
                          alpha: 1, beta: bias == nil ? 0 : 1)
        return y
    }

    /// dy (N, M), x (N, K) the forward's input → dx (N, K) = dy W; adds dyᵀ x to W's gradient (M, K) and the column
    /// sums of dy to b's (M).
    func backward(_ dy: Tensor, input x: Tensor, _ products: any MatrixProducts) -> Tensor {
        let k = inFeatures, m = outFeatures, n = x.count / k
        let dx = Tensor(uninitializedShape: [n, k])
        products.multiply(m: n, n: k, k: m, dy.data, transposeA: false, weight.value.data, transposeB: false, into: dx.data,
                          alpha: 1, beta: 0)
        products.multiply(m: m, n: k, k: n, dy.data, transposeA: true, x.data, transposeB: false,
                          into: weight.gradient.data, alpha: 1, beta: 1)
        if let bias { Rows.addColumnSums(dy.data, rows: n, columns: m, into: bias.gradient.data) }
        return dx
    }
}
