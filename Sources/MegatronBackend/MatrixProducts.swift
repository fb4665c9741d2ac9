/// General matrix products on FP32 host memory (multiplied in FP32, or in BF16 where `precision` says so), what training's layers multiply with (their weights change every
/// step, so they are plain rows, never a backend's packed or quantized form). A backend target implements it with
/// its own library (`CPUMatrixProducts`: OpenBLAS split across cores); the training layers see this protocol only.
///
/// Row-major throughout: c (m, n) = α · op(a) · op(b) + β · c, where op(a) (m, k) is a (m, k), or a (k, m) read
/// transposed, and op(b) (k, n) is b (k, n), or b (n, k) read transposed.
///
/// ```swift
/// // y (N, M) = x (N, K) · Wᵀ, W (M, K):
/// products.multiply(m: n, n: m, k: k, x, transposeA: false, w, transposeB: true, into: y, alpha: 1, beta: 0)
/// ```
public protocol MatrixProducts: Sendable {
    /// What the products multiply in: "fp32", or "bf16" (operands rounded to BF16, sums in FP32).
    var precision: String { get }

    func multiply(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>,
                  transposeB: Bool, into c: UnsafeMutablePointer<Float>, alpha: Float, beta: Float)
}

extension MatrixProducts {
    public var precision: String { "fp32" }
}
