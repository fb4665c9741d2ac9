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
        /// P per (sequence, head), (S, S) row-major each, before dropout.
        var probabilities: [[Float]]
        /// The dropout masks per (sequence, head), nil when none.
        var masks: [[Float]?]
    }

    func forward(_ qkv: Tensor, batch b: Int, sequence s: Int, keep: [[Float]], _ random: inout SeededRandom,
                 _ products: any MatrixProducts) -> (context: Tensor, saved: Saved) {
        let h = qkv.shape[1] / 3, d = h / heads, scale = 1 / Float(d).squareRoot()
        let context = Tensor(shape: [b * s, h])
        var saved = Saved(probabilities: [], masks: [])
        var q = [Float](repeating: 0, count: s * d), k = q, v = q, out = q
        var scores = [Float](repeating: 0, count: s * s)
        for sequence in 0..<b {
            for head in 0..<heads {
                Self.gather(qkv, sequence: sequence, s: s, column: head * d, width: d, into: &q)
                Self.gather(qkv, sequence: sequence, s: s, column: h + head * d, width: d, into: &k)
                Self.gather(qkv, sequence: sequence, s: s, column: 2 * h + head * d, width: d, into: &v)
                products.multiply(m: s, n: s, k: d, q, transposeA: false, k, transposeB: true, into: &scores, alpha: scale, beta: 0)
                Self.softmax(&scores, s: s, keep: keep[sequence])
                saved.probabilities.append(scores)
                let mask = dropout.mask(count: s * s, &random)
                saved.masks.append(mask)
                var dropped = scores
                if let mask { for i in 0..<(s * s) { dropped[i] *= mask[i] } }
                products.multiply(m: s, n: d, k: s, dropped, transposeA: false, v, transposeB: false, into: &out, alpha: 1, beta: 0)
                Self.scatter(out, into: context, sequence: sequence, s: s, column: head * d, width: d)
            }
        }
        return (context, saved)
    }

    /// dContext (B·S, H), qkv the forward's input → dqkv (B·S, 3H). With P′ = dropout(P):
    /// dV = P′ᵀ dC, dP = (dC Vᵀ) ⊙ mask, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS K / √d, dK = dSᵀ Q / √d.
    func backward(_ dContext: Tensor, input qkv: Tensor, batch b: Int, sequence s: Int, saved: Saved,
                  _ products: any MatrixProducts) -> Tensor {
        let h = qkv.shape[1] / 3, d = h / heads, scale = 1 / Float(d).squareRoot()
        let dqkv = Tensor(shape: qkv.shape)
        var q = [Float](repeating: 0, count: s * d), k = q, v = q, dc = q, dq = q, dk = q, dv = q
        var dp = [Float](repeating: 0, count: s * s)
        for sequence in 0..<b {
            for head in 0..<heads {
                let index = sequence * heads + head
                let p = saved.probabilities[index], mask = saved.masks[index]
                Self.gather(qkv, sequence: sequence, s: s, column: head * d, width: d, into: &q)
                Self.gather(qkv, sequence: sequence, s: s, column: h + head * d, width: d, into: &k)
                Self.gather(qkv, sequence: sequence, s: s, column: 2 * h + head * d, width: d, into: &v)
                Self.gather(dContext, sequence: sequence, s: s, column: head * d, width: d, into: &dc)
                var dropped = p
                if let mask { for i in 0..<(s * s) { dropped[i] *= mask[i] } }
                products.multiply(m: s, n: d, k: s, dropped, transposeA: true, dc, transposeB: false, into: &dv, alpha: 1, beta: 0)
                products.multiply(m: s, n: s, k: d, dc, transposeA: false, v, transposeB: true, into: &dp, alpha: 1, beta: 0)
                if let mask { for i in 0..<(s * s) { dp[i] *= mask[i] } }
                for row in 0..<s {  // softmax backward, in place: dp becomes dS
                    var dot = 0.0
                    for j in 0..<s { dot += Double(dp[row * s + j]) * Double(p[row * s + j]) }
                    for j in 0..<s { dp[row * s + j] = Float(Double(p[row * s + j]) * (Double(dp[row * s + j]) - dot)) }
                }
                products.multiply(m: s, n: d, k: s, dp, transposeA: false, k, transposeB: false, into: &dq, alpha: scale, beta: 0)
                products.multiply(m: s, n: d, k: s, dp, transposeA: true, q, transposeB: false, into: &dk, alpha: scale, beta: 0)
                Self.scatter(dq, into: dqkv, sequence: sequence, s: s, column: head * d, width: d)
                Self.scatter(dk, into: dqkv, sequence: sequence, s: s, column: h + head * d, width: d)
                Self.scatter(dv, into: dqkv, sequence: sequence, s: s, column: 2 * h + head * d, width: d)
            }
        }
        return dqkv
    }

    /// Row-wise softmax of scores (S, S) over the kept keys, in Double; uniform where no key is kept.
    static func softmax(_ scores: inout [Float], s: Int, keep: [Float]) {
        let anyKept = keep.contains { $0 != 0 }
        for row in 0..<s {
            var top = -Double.infinity
            for j in 0..<s where !anyKept || keep[j] != 0 { top = max(top, Double(scores[row * s + j])) }
            var sum = 0.0
            var e = [Double](repeating: 0, count: s)
            for j in 0..<s where !anyKept || keep[j] != 0 {
                e[j] = anyKept ? exp(Double(scores[row * s + j]) - top) : 1
                sum += e[j]
            }
            for j in 0..<s { scores[row * s + j] = Float(e[j] / sum) }
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
