import Foundation
import MegatronBackend

/// Scaled dot-product attention over padded sequences as a forward/backward pair (`MegatronBertSelfAttention`'s core,
/// after the Q, K, V products): per sequence and head, P = softmax(Q Kᵀ / √d + mask), context = dropout(P) V.
/// Shapes: qkv (B·S, 3H) = Q | K | V, each `heads` heads of d = H / heads columns; keep (B, S), 1 for a key that is a
/// token and 0 for padding → context (B·S, H). Saved: P (B, heads, S, S) and the dropout masks.
///
/// Padding keys get probability 0 (transformers adds the dtype's lowest value); a row with no key kept attends
/// uniformly, as that additive mask gives.
struct Attention {
    let heads: Int
    let dropout: Dropout

    struct Saved {
        /// P (B·heads, S, S): per (sequence, head) an (S, S) row-major block, before dropout.
        var probabilities: Tensor
        /// The dropout masks, the same shape, nil when none.
        var masks: Tensor?
    }

    /// Per (sequence, head) on every core; the dropout masks drawn first, in (sequence, head) order.
    func forward(_ qkv: Tensor, batch b: Int, sequence s: Int, keep: [[Float]], _ random: inout SeededRandom,
                 _ products: any MatrixProducts) -> (context: Tensor, saved: Saved) {
        let h = qkv.shape[1] / 3, d = h / heads, scale = 1 / Float(d).squareRoot()
        let context = Tensor(uninitializedShape: [b * s, h])
        let masks = dropout.mask(count: b * heads * s * s, &random)  // (sequence, head) blocks in order
        let probabilities = Tensor(uninitializedShape: [b * heads, s, s])
        DispatchQueue.concurrentPerform(iterations: b * heads) { index in
            let sequence = index / heads, head = index % heads
            var q = [Float](repeating: 0, count: s * d), k = q, v = q, out = q
            var scores = [Float](repeating: 0, count: s * s)
            Self.gather(qkv, sequence: sequence, s: s, column: head * d, width: d, into: &q)
            Self.gather(qkv, sequence: sequence, s: s, column: h + head * d, width: d, into: &k)
            Self.gather(qkv, sequence: sequence, s: s, column: 2 * h + head * d, width: d, into: &v)
            products.multiply(m: s, n: s, k: d, q, transposeA: false, k, transposeB: true, into: &scores, alpha: scale, beta: 0)
            Self.softmax(&scores, s: s, keep: keep[sequence])
            (probabilities.data + index * s * s).update(from: scores, count: s * s)
            if let masks { for i in 0..<(s * s) { scores[i] *= masks.data[index * s * s + i] } }
            products.multiply(m: s, n: d, k: s, scores, transposeA: false, v, transposeB: false, into: &out, alpha: 1, beta: 0)
            Self.scatter(out, into: context, sequence: sequence, s: s, column: head * d, width: d)
        }
        return (context, Saved(probabilities: probabilities, masks: masks))
    }

    /// dContext (B·S, H), qkv the forward's input → dqkv (B·S, 3H), per (sequence, head) on every core. With
    /// P′ = dropout(P): dV = P′ᵀ dC, dP = (dC Vᵀ) ⊙ mask, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS K / √d,
    /// dK = dSᵀ Q / √d.
    func backward(_ dContext: Tensor, input qkv: Tensor, batch b: Int, sequence s: Int, saved: Saved,
                  _ products: any MatrixProducts) -> Tensor {
        let h = qkv.shape[1] / 3, d = h / heads, scale = 1 / Float(d).squareRoot()
        let dqkv = Tensor(uninitializedShape: qkv.shape)
        DispatchQueue.concurrentPerform(iterations: b * heads) { index in
            let sequence = index / heads, head = index % heads
            var q = [Float](repeating: 0, count: s * d), k = q, v = q, dc = q, dq = q, dk = q, dv = q
            var dp = [Float](repeating: 0, count: s * s)
            let p = saved.probabilities.data + index * s * s, mask = saved.masks.map { $0.data + index * s * s }
            Self.gather(qkv, sequence: sequence, s: s, column: head * d, width: d, into: &q)
            Self.gather(qkv, sequence: sequence, s: s, column: h + head * d, width: d, into: &k)
            Self.gather(qkv, sequence: sequence, s: s, column: 2 * h + head * d, width: d, into: &v)
            Self.gather(dContext, sequence: sequence, s: s, column: head * d, width: d, into: &dc)
            // P′ = P ⊙ mask (P itself without dropout: no copy).
            let dropped = mask.map { mask in (0..<(s * s)).map { p[$0] * mask[$0] } }
            if let dropped {
                products.multiply(m: s, n: d, k: s, dropped, transposeA: true, dc, transposeB: false, into: &dv, alpha: 1, beta: 0)
            } else {
                products.multiply(m: s, n: d, k: s, p, transposeA: true, dc, transposeB: false, into: &dv, alpha: 1, beta: 0)
            }
            products.multiply(m: s, n: s, k: d, dc, transposeA: false, v, transposeB: true, into: &dp, alpha: 1, beta: 0)
            if let mask { for i in 0..<(s * s) { dp[i] *= mask[i] } }
            dp.withUnsafeMutableBufferPointer { dp in  // softmax backward, in place: dp becomes dS
                for row in 0..<s {
                    let pr = p + row * s, dr = dp.baseAddress! + row * s
                    let dot = Rows.dot(dr, pr, s)
                    for j in 0..<s { dr[j] = pr[j] * (dr[j] - dot) }
                }
            }
            products.multiply(m: s, n: d, k: s, dp, transposeA: false, k, transposeB: false, into: &dq, alpha: scale, beta: 0)
            products.multiply(m: s, n: d, k: s, dp, transposeA: true, q, transposeB: false, into: &dk, alpha: scale, beta: 0)
            Self.scatter(dq, into: dqkv, sequence: sequence, s: s, column: head * d, width: d)
            Self.scatter(dk, into: dqkv, sequence: sequence, s: s, column: h + head * d, width: d)
            Self.scatter(dv, into: dqkv, sequence: sequence, s: s, column: 2 * h + head * d, width: d)
        }
        return dqkv
    }

    /// Row-wise softmax of scores (S, S) over the kept keys, e^x on eight lanes; uniform where no key is kept.
    static func softmax(_ scores: inout [Float], s: Int, keep: [Float]) {
        let anyKept = keep.contains { $0 != 0 }
        keep.withUnsafeBufferPointer { keep in
            scores.withUnsafeMutableBufferPointer { scores in
                let keep = keep.baseAddress!
                for row in 0..<s {
                    let x = scores.baseAddress! + row * s
                    guard anyKept else {
                        for j in 0..<s { x[j] = 1 / Float(s) }
                        continue
                    }
                    var top = -Float.infinity
                    for j in 0..<s where keep[j] != 0 { top = max(top, x[j]) }
                    for j in 0..<s { x[j] -= top }
                    VectorMath.apply(x, count: s) { VectorMath.exp($0) }
                    for j in 0..<s { x[j] *= keep[j] }  // dropped keys: 0 (e^x of whatever they held, times 0)
                    let inverse = 1 / Rows.sum(x, s)
                    for j in 0..<s { x[j] *= inverse }
                }
            }
        }
    }

    /// Columns `column ..< column + width` of the rows of `sequence` (S rows) of x, as a (S, width) matrix.
    static func gather(_ x: Tensor, sequence: Int, s: Int, column: Int, width: Int, into out: inout [Float]) {
        let ld = x.shape[1]
        for row in 0..<s {
            let source = x.data + (sequence * s + row) * ld + column
            for j in 0..<width { out[row * width + j] = source[j] }
        }
    }

    /// `gather`'s inverse: a (S, width) matrix written into those columns of x.
    static func scatter(_ values: [Float], into x: Tensor, sequence: Int, s: Int, column: Int, width: Int) {
        let ld = x.shape[1]
        for row in 0..<s {
            let target = x.data + (sequence * s + row) * ld + column
            for j in 0..<width { target[j] = values[row * width + j] }
        }
    }
}
