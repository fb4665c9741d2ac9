import CTrainingKernels
import Foundation
import MegatronBackend

/// Scaled dot-product attention over padded sequences as a forward/backward pair (`MegatronBertSelfAttention`'s core,
/// after the Q, K, V products): per sequence and head, P = softmax(Q Kᵀ / √d + mask), context = dropout(P) V.
/// Shapes: Q (B·Sq, ·), K and V (B·S, ·), each H = `heads` × d columns at their own offsets (`Inputs`); keep (B, S), 1
/// for a key that is a token and 0 for padding → context (B·Sq, H). Sq is S (every token's query), or 1 (the first
/// token's only: a sequence classifier's last layer, whose other rows nothing reads). Saved: P (B, heads, Sq, S) and
/// the dropout masks.
///
/// Padding keys get probability 0 (transformers adds the dtype's lowest value); a row with no key kept attends
/// uniformly, as that additive mask gives.
struct Attention {
    let heads: Int
    let dropout: Dropout

    /// Where the queries, keys and values are: column blocks of row-major tensors.
    struct Inputs {
        /// (B·Sq, ·), Q in columns `queryColumn ..< queryColumn + H`.
        var queries: Tensor
        var queryColumn: Int
        /// (B·S, ·), K and V in H columns from `keyColumn` and `valueColumn`.
        var keysValues: Tensor
        var keyColumn: Int, valueColumn: Int
        /// Sq: S, or 1 for the first token's query only.
        var queriesPerSequence: Int

        /// Q | K | V side by side in one (B·S, 3H) tensor: every token's query.
        static func stacked(_ qkv: Tensor, sequence s: Int) -> Inputs {
            let h = qkv.shape[1] / 3
            return Inputs(queries: qkv, queryColumn: 0, keysValues: qkv, keyColumn: h, valueColumn: 2 * h, queriesPerSequence: s)
        }

        /// The first token's query of each sequence (B, H) and K | V (B·S, 2H).
        static func firstQueries(_ queries: Tensor, keysValues: Tensor) -> Inputs {
            Inputs(queries: queries, queryColumn: 0, keysValues: keysValues, keyColumn: 0, valueColumn: queries.shape[1],
                   queriesPerSequence: 1)
        }
    }

    struct Saved {
        /// P (B·heads, Sq, S): per (sequence, head) an (Sq, S) row-major block, before dropout.
        var probabilities: Tensor
        /// The dropout masks, the same shape, nil when none.
        var masks: DropoutMask?
    }

    /// Per (sequence, head), the pairs split in contiguous runs across the cores; the dropout masks drawn first, in
    /// (sequence, head) order.
    func forward(_ inputs: Inputs, batch b: Int, sequence s: Int, keep: [[Float]], _ random: inout SeededRandom,
                 _ products: any MatrixProducts) -> (context: Tensor, saved: Saved) {
        let sq = inputs.queriesPerSequence, h = inputs.keysValues.shape[1] - inputs.valueColumn, d = h / heads
        let scale = 1 / Float(d).squareRoot()
        let context = Tensor(uninitializedShape: [b * sq, h])
        let masks = dropout.mask(count: b * heads * sq * s, &random)  // (sequence, head) blocks in order
        let probabilities = Tensor(uninitializedShape: [b * heads, sq, s])
        inRuns(b * heads) { pairs in
            // One core's scratch: Q and the context (Sq, d), K and V (S, d), the scores (Sq, S).
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * sq * d + 2 * s * d + sq * s)
            defer { scratch.deallocate() }
            let q = scratch, out = q + sq * d, k = out + sq * d, v = k + s * d, scores = v + s * d
            for index in pairs {
                let sequence = index / heads, head = index % heads
                Self.gather(inputs.queries, firstRow: sequence * sq, rows: sq, column: inputs.queryColumn + head * d, width: d, into: q)
                Self.gather(inputs.keysValues, firstRow: sequence * s, rows: s, column: inputs.keyColumn + head * d, width: d, into: k)
                Self.gather(inputs.keysValues, firstRow: sequence * s, rows: s, column: inputs.valueColumn + head * d, width: d, into: v)
                products.multiply(m: sq, n: s, k: d, q, transposeA: false, k, transposeB: true, into: scores, alpha: scale, beta: 0)
                Self.softmax(scores, rows: sq, s: s, keep: keep[sequence])
                (probabilities.data + index * sq * s).update(from: scores, count: sq * s)
                masks?.apply(to: scores, from: index * sq * s, count: sq * s)
                products.multiply(m: sq, n: d, k: s, scores, transposeA: false, v, transposeB: false, into: out, alpha: 1, beta: 0)
                Self.scatter(out, into: context, firstRow: sequence * sq, rows: sq, column: head * d, width: d)
            }
        }
        return (context, Saved(probabilities: probabilities, masks: masks))
    }

    /// dContext (B·Sq, H), the forward's inputs → their gradients, of the inputs' shapes (one tensor when the inputs
    /// are one), per (sequence, head) as the forward pass splits them. With P′ = dropout(P): dV = P′ᵀ dC,
    /// dP = (dC Vᵀ) ⊙ mask, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS K / √d, dK = dSᵀ Q / √d.
    func backward(_ dContext: Tensor, inputs: Inputs, batch b: Int, sequence s: Int, saved: Saved,
                  _ products: any MatrixProducts) -> (queries: Tensor, keysValues: Tensor) {
        let sq = inputs.queriesPerSequence, h = dContext.shape[1], d = h / heads, scale = 1 / Float(d).squareRoot()
        let dKeysValues = Tensor(uninitializedShape: inputs.keysValues.shape)
        let dQueries = inputs.queries === inputs.keysValues ? dKeysValues : Tensor(uninitializedShape: inputs.queries.shape)
        inRuns(b * heads) { pairs in
            // One core's scratch: Q, dC, dQ (Sq, d); K, V, dK, dV (S, d); dP and P′ (Sq, S).
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 3 * sq * d + 4 * s * d + 2 * sq * s)
            defer { scratch.deallocate() }
            let q = scratch, dc = q + sq * d, dq = dc + sq * d, k = dq + sq * d, v = k + s * d, dk = v + s * d, dv = dk + s * d
            let dp = dv + s * d, dropped = dp + sq * s
            for index in pairs {
                let sequence = index / heads, head = index % heads
                let p = saved.probabilities.data + index * sq * s, mask = saved.masks, offset = index * sq * s
                Self.gather(inputs.queries, firstRow: sequence * sq, rows: sq, column: inputs.queryColumn + head * d, width: d, into: q)
                Self.gather(inputs.keysValues, firstRow: sequence * s, rows: s, column: inputs.keyColumn + head * d, width: d, into: k)
                Self.gather(inputs.keysValues, firstRow: sequence * s, rows: s, column: inputs.valueColumn + head * d, width: d, into: v)
                Self.gather(dContext, firstRow: sequence * sq, rows: sq, column: head * d, width: d, into: dc)
                // P′ = P ⊙ mask (P itself without dropout: no copy).
                if let mask {
                    dropped.update(from: p, count: sq * s)
                    mask.apply(to: dropped, from: offset, count: sq * s)
                }
                products.multiply(m: s, n: d, k: sq, mask == nil ? UnsafePointer(p) : UnsafePointer(dropped), transposeA: true, dc, transposeB: false,
                                  into: dv, alpha: 1, beta: 0)
                products.multiply(m: sq, n: s, k: d, dc, transposeA: false, v, transposeB: true, into: dp, alpha: 1, beta: 0)
                mask?.apply(to: dp, from: offset, count: sq * s)
                for row in 0..<sq {  // softmax backward, in place: dp becomes dS
                    let pr = p + row * s, dr = dp + row * s
                    let dot = Rows.dot(dr, pr, s)
                    for j in 0..<s { dr[j] = pr[j] * (dr[j] - dot) }
                }
                products.multiply(m: sq, n: d, k: s, dp, transposeA: false, k, transposeB: false, into: dq, alpha: scale, beta: 0)
                products.multiply(m: s, n: d, k: sq, dp, transposeA: true, q, transposeB: false, into: dk, alpha: scale, beta: 0)
                Self.scatter(dq, into: dQueries, firstRow: sequence * sq, rows: sq, column: inputs.queryColumn + head * d, width: d)
                Self.scatter(dk, into: dKeysValues, firstRow: sequence * s, rows: s, column: inputs.keyColumn + head * d, width: d)
                Self.scatter(dv, into: dKeysValues, firstRow: sequence * s, rows: s, column: inputs.valueColumn + head * d, width: d)
            }
        }
        return (dQueries, dKeysValues)
    }

    /// Row-wise softmax of scores (rows, S) over the kept keys; uniform where no key is kept.
    static func softmax(_ scores: UnsafeMutablePointer<Float>, rows: Int, s: Int, keep: [Float]) {
        let anyKept = keep.contains { $0 != 0 }
        keep.withUnsafeBufferPointer { keep in
            let keep = keep.baseAddress!
            for row in 0..<rows {
                let x = scores + row * s
                guard anyKept else {
                    for j in 0..<s { x[j] = 1 / Float(s) }
                    continue
                }
                var top = -Float.infinity
                for j in 0..<s where keep[j] != 0 { top = max(top, x[j]) }
                for j in 0..<s { x[j] -= top }
                mb_exp_in_place(x, s)  // VectorMath.exp's bits at the CPU's vector width
                for j in 0..<s { x[j] *= keep[j] }  // dropped keys: 0 (e^x of whatever they held, times 0)
                let inverse = 1 / Rows.sum(x, s)
                for j in 0..<s { x[j] *= inverse }
            }
        }
    }

    /// Columns `column ..< column + width` of `rows` rows of x from `firstRow`, as a (rows, width) matrix.
    static func gather(_ x: Tensor, firstRow: Int, rows: Int, column: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
        let ld = x.shape[1]
        for row in 0..<rows { (out + row * width).update(from: x.data + (firstRow + row) * ld + column, count: width) }
    }

    /// `gather`'s inverse: a (rows, width) matrix written into those columns of x.
    static func scatter(_ values: UnsafePointer<Float>, into x: Tensor, firstRow: Int, rows: Int, column: Int, width: Int) {
        let ld = x.shape[1]
        for row in 0..<rows { (x.data + (firstRow + row) * ld + column).update(from: values + row * width, count: width) }
    }
}
