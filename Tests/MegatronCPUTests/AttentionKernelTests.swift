import CAttention
import Foundation
import Testing
@testable import MegatronCPU

/// The attention kernel (one head of one sequence, its scores in cache) at every vector width this CPU runs: against
/// a float64 softmax(scale · Q Kᵀ) V over many shapes (d and the keys filling no vector, rows filling no register
/// tile, blocks of 1 and more), masks with dropped keys and with none kept; every row's bits independent of the other
/// rows and of the block; nothing written outside the (rows, d) output.
@Suite(.enabled(if: mb_attention_width() > 0, "this CPU has neither AVX-512 nor AVX2 + FMA"))
struct AttentionKernelTests {
    /// The widths this CPU runs: 8 (AVX2 + FMA) and, on an AVX-512 CPU, 16.
    static let widths = [8, 16].filter { $0 <= Int(mb_attention_width()) }
    /// The widths the backend runs here (kept to oneDNN's cap, `DNNL_MAX_CPU_ISA`).
    static let backendWidths = widths.filter { $0 <= CPUBackend.widestAttentionLanes }

    /// The kernel's output (rows, ldo) for these inputs: q, k, v rows `ld` apart; columns past d left NaN.
    static func attend(q: [Float], k: [Float], v: [Float], ld: Int, rows: Int, keys: Int, d: Int, keep: [Float], block: Int,
                       width: Int, ldo: Int) -> [Float] {
        let floats = mb_attention_work_floats(Int32(rows), Int32(keys), Int32(d), Int32(block), Int32(width))
        let work = UnsafeMutableRawPointer.allocate(byteCount: max(floats, 16) * 4, alignment: 64)
        defer { work.deallocate() }
        var out = [Float](repeating: .nan, count: rows * ldo)
        mb_attention_f32(q, k, v, ld, Int32(rows), Int32(keys), Int32(d), 1 / Float(d).squareRoot(), keep, &out, ldo,
                         Int32(block), Int32(width), work.assumingMemoryBound(to: Float.self))
        return out
    }

    /// softmax(Q Kᵀ / √d) V in float64, over kept keys (all keys uniformly when none is kept).
    static func reference(q: [Float], k: [Float], v: [Float], ld: Int, rows: Int, keys: Int, d: Int, keep: [Float]) -> [Double] {
        let scale = 1 / Double(d).squareRoot(), anyKept = keep.prefix(keys).contains { $0 != 0 }
        var out = [Double](repeating: 0, count: rows * d)
        for r in 0..<rows {
            var scores = (0..<keys).map { j in (0..<d).reduce(0.0) { $0 + Double(q[r * ld + $1]) * Double(k[j * ld + $1]) } * scale }
            let maximum = (0..<keys).filter { !anyKept || keep[$0] != 0 }.map { scores[$0] }.max() ?? 0
            for j in 0..<keys { scores[j] = !anyKept ? 1 : keep[j] != 0 ? Foundation.exp(scores[j] - maximum) : 0 }
            let total = scores.reduce(0, +)
            for c in 0..<d { out[r * d + c] = (0..<keys).reduce(0.0) { $0 + scores[$1] * Double(v[$1 * ld + c]) } / total }
        }
        return out
    }

    @Test(arguments: widths)
    func contextMatchesFloat64(width: Int) {
        var seed: UInt64 = 1
        for (rows, keys, d) in [(1, 1, 1), (3, 5, 3), (4, 8, 8), (5, 16, 16), (7, 33, 20), (13, 64, 64), (17, 130, 64), (9, 9, 100)] {
            for mask in ["all", "dropped", "none"] {
                let ld = 3 * d + 1  // rows wider than d, as Q | K | V are in qkv
                seed += 3
                let q = OneDNNTests.random(rows * ld, seed: seed).map { $0 * 3 }, k = OneDNNTests.random(keys * ld, seed: seed + 1).map { $0 * 3 }
                let v = OneDNNTests.random(keys * ld, seed: seed + 2)
                let keep: [Float] = (0..<keys).map { j in mask == "all" ? 1 : mask == "none" ? 0 : (j % 3 == 1 ? 0 : 1) }
                let expected = Self.reference(q: q, k: k, v: v, ld: ld, rows: rows, keys: keys, d: d, keep: keep)
                for block in [1, 4, 128] {
                    let ldo = d + 3
                    let out = Self.attend(q: q, k: k, v: v, ld: ld, rows: rows, keys: keys, d: d, keep: keep, block: block,
                                          width: width, ldo: ldo)
                    let (worst, outsideKept) = OneDNNTests.compare(out, expected, rows: rows, columns: d, stride: ldo)
                    // Outputs are weighted means of values in [-1, 1]: FP32 sums of ≤ 130 terms and exp within 2e-7.
                    #expect(worst < 2e-6, "rows \(rows), keys \(keys), d \(d), mask \(mask), block \(block): worst \(worst)")
                    #expect(outsideKept, "rows \(rows), keys \(keys), d \(d): a column past d was written")
                }
            }
        }
    }

    /// A row's context is the same bits alone, among other rows, and in any block (packed and padded batches, and
    /// batches of any size, give each sequence the same numbers).
    @Test(arguments: widths)
    func eachRowsBitsAreItsOwn(width: Int) {
        let (rows, keys, d) = (13, 37, 64), ld = 3 * d
        let q = OneDNNTests.random(rows * ld, seed: 71), k = OneDNNTests.random(keys * ld, seed: 72)
        let v = OneDNNTests.random(keys * ld, seed: 73), keep = [Float](repeating: 1, count: keys)
        let whole = Self.attend(q: q, k: k, v: v, ld: ld, rows: rows, keys: keys, d: d, keep: keep, block: 128, width: width, ldo: d)
        for block in [1, 3, 5] {
            #expect(Self.attend(q: q, k: k, v: v, ld: ld, rows: rows, keys: keys, d: d, keep: keep, block: block, width: width, ldo: d)
                    == whole, "block \(block)")
        }
        for r in 0..<rows {
            let alone = Self.attend(q: Array(q[(r * ld)...]), k: k, v: v, ld: ld, rows: 1, keys: keys, d: d, keep: keep, block: 1,
                                    width: width, ldo: d)
            #expect(alone == Array(whole[(r * d)..<((r + 1) * d)]), "row \(r)")
        }
    }

    /// The backend's attention through the kernel agrees with its attention through OpenBLAS (the path of CPUs with
    /// neither AVX-512 nor AVX2) on a padded batch, within FP32 rounding (1e-5).
    @Test(arguments: backendWidths)
    func backendAgreesWithOpenBLASAttention(width: Int) throws {
        let heads = 4, d = 16, h = heads * d, batch = 3, s = 21
        let qkv = Tensor(shape: [batch * s, 3 * h], values: OneDNNTests.random(batch * s * 3 * h, seed: 81).map { $0 * 2 })
        let keep: [[Float]] = [Array(repeating: 1, count: s), Array(repeating: 1, count: 9) + Array(repeating: 0, count: s - 9),
                               (0..<s).map { $0 % 4 == 0 ? 0 : 1 }]
        let blas = CPUBackend(attentionLanes: 0), kernel = CPUBackend(attentionLanes: width)
        #expect(blas.attentionLanes == 0 && kernel.attentionLanes == width)
        let a = try blas.download(blas.attention(qkv: qkv, batch: batch, sequence: s, heads: heads, keep: keep))
        let b = try kernel.download(kernel.attention(qkv: qkv, batch: batch, sequence: s, heads: heads, keep: keep))
        var worst: Float = 0
        for i in 0..<(batch * s * h) { worst = max(worst, abs(a.data[i] - b.data[i])) }
        #expect(worst < 1e-5, "worst \(worst)")
    }
}
