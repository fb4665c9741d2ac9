import Foundation
import MegatronBackend

/// `body` over 0..<count in contiguous chunks of `size` (the last shorter), on every core. The chunks are fixed by
/// `size`, not by the number of cores, so sums made per chunk and added in chunk order give the same bits whatever
/// the core count.
func inChunks(_ count: Int, size: Int = 1 << 16, _ body: (Range<Int>) -> Void) {
    let parts = (count + size - 1) / size
    guard parts > 1 else { return body(0..<count) }
    DispatchQueue.concurrentPerform(iterations: parts) { part in body(part * size..<min(count, (part + 1) * size)) }
}

/// `body` over 0..<count in one contiguous run per core (`MEGATRON_BERT_THREADS` or every core): for work whose
/// items are independent and equal (attention's (sequence, head) pairs), each core's scratch made once.
func inRuns(_ count: Int, _ body: (Range<Int>) -> Void) {
    let parts = min(count, threads)
    guard parts > 1 else { return body(0..<count) }
    DispatchQueue.concurrentPerform(iterations: parts) { part in body(count * part / parts..<count * (part + 1) / parts) }
}

/// The cores training splits its work across.
private let threads = (try? System.threads()) ?? System.cores

/// Row reductions on 16 lanes (the lanes' partial sums added in a fixed order).
enum Rows {
    typealias V = SIMD16<Float>

    /// Σ x[i] over n floats.
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var lanes = V(), i = 0
        while i + 16 <= n {
            lanes += UnsafeRawPointer(x + i).loadUnaligned(as: V.self)
            i += 16
        }
        var total = lanes.sum()
        while i < n { total += x[i]; i += 1 }
        return total
    }

    /// Σ x[i]·y[i] over n floats.
    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var lanes = V(), i = 0
        while i + 16 <= n {
            lanes += UnsafeRawPointer(x + i).loadUnaligned(as: V.self) * UnsafeRawPointer(y + i).loadUnaligned(as: V.self)
            i += 16
        }
        var total = lanes.sum()
        while i < n { total += x[i] * y[i]; i += 1 }
        return total
    }

    /// Σ (x[i] − c)² over n floats.
    @inline(__always)
    static func squaredDeviation(_ x: UnsafePointer<Float>, _ c: Float, _ n: Int) -> Float {
        var lanes = V(), i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: V.self) - c
            lanes += v * v
            i += 16
        }
        var total = lanes.sum()
        while i < n { total += (x[i] - c) * (x[i] - c); i += 1 }
        return total
    }

    /// Every one of y's `rows` rows (`columns` floats each) set to `row` (a bias before its product), on every core.
    static func broadcast(_ row: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        inChunks(rows, size: 64) { range in
            for r in range { (y + r * columns).update(from: row, count: columns) }
        }
    }

    /// `count` floats copied from `source`, on every core (one core's copy leaves the other idle).
    static func copy(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, count: Int) {
        inChunks(count) { range in (target + range.lowerBound).update(from: source + range.lowerBound, count: range.count) }
    }

    /// The column sums of x (rows, n) added into `into` (n): per chunk of 64 rows on every core, the chunks' sums added
    /// in order.
    static func addColumnSums(_ x: UnsafePointer<Float>, rows: Int, columns n: Int, into: UnsafeMutablePointer<Float>) {
        let size = 64, chunks = (rows + size - 1) / size
        var partial = [Float](repeating: 0, count: chunks * n)
        partial.withUnsafeMutableBufferPointer { buffer in
            let partial = buffer.baseAddress!
            inChunks(rows, size: size) { range in
                let out = partial + (range.lowerBound / size) * n
                for row in range {
                    let v = x + row * n
                    for j in 0..<n { out[j] += v[j] }
                }
            }
        }
        for chunk in 0..<chunks {
            for j in 0..<n { into[j] += partial[chunk * n + j] }
        }
    }
}
