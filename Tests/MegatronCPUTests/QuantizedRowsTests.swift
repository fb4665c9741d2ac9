import Foundation
import CQuantizedRows
import Testing
@testable import MegatronCPU
import MegatronBackend

/// The int8 path's C kernels (`CQuantizedRows`) at every vector level this CPU has (plain C, AVX2, AVX-512),
/// against the formulas written out here in Swift, bit for bit: the quantized bytes, scales, zero points and level
/// sums, and the floats of the way back. Rows of every length around the vector widths, ties between two levels,
/// rows of zeros, one-signed rows, NaN and infinities.
struct QuantizedRowsTests {
    static let levels = Array(0...QuantizedRows.widest)

    static func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(Int64(bitPattern: state >> 11) % 20_000) / 10_000 - 1) * scale
        }
    }

    /// Rows for both quantizers: lengths around 8, 16 and 32 lanes, and the special rows.
    static func rows() -> [[Float]] {
        var rows: [[Float]] = []
        for (index, k) in [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 100, 1024, 1031].enumerated() {
            rows.append(random(k, seed: UInt64(index + 1), scale: [0.01, 1, 300][index % 3]))
        }
        let ties: [Float] = [255, 0.5, 1.5, 2.5, 3.5, 4.5, 126.5, 127.5, 254.5] + [Float](repeating: 10.5, count: 40)
        rows += [ties, ties.map { -$0 }, [Float](repeating: 0, count: 40), [Float](repeating: 3, count: 33),
                 random(48, seed: 99).map { abs($0) + 1 }, random(48, seed: 98).map { -abs($0) - 1 }]
        for special: Float in [.nan, .infinity, -.infinity] {
            for position in [0, 5, 40] {
                var row = random(48, seed: 7)
                row[position] = special
                rows.append(row)
            }
        }
        return rows
    }

    /// The activation formula (`mb_quantize_row`), written out.
    static func expectedActivations(_ x: [Float], top: Float) -> (q: [UInt8], scale: Float, zero: Int32) {
        guard x.allSatisfy(\.isFinite) else { return ([UInt8](repeating: 0, count: x.count), .nan, 0) }
        let lowest = min(0, x.min()!), highest = max(0, x.max()!)
        let scale: Float = highest > lowest ? (highest - lowest) / top : 1
        let zero = min(top, max(0, (-lowest / scale).rounded(.toNearestOrAwayFromZero)))
        let inverse = 1 / scale
        return (x.map { UInt8(min(top, max(0, $0 * inverse + zero)).rounded(.toNearestOrEven)) }, scale, Int32(zero))
    }

    /// The weight formula (`mb_quantize_weight_row`), written out.
    static func expectedWeights(_ w: [Float], levels: Float) -> (q: [Int8], scale: Float, sum: Int32) {
        guard w.allSatisfy(\.isFinite) else { return ([Int8](repeating: 0, count: w.count), .nan, 0) }
        let top = w.map(abs).max()!
        let scale: Float = top > 0 ? top / levels : 1, inverse = 1 / scale
        let q = w.map { Int8(min(levels, max(-levels, $0 * inverse)).rounded(.toNearestOrEven)) }
        return (q, scale, q.reduce(0) { $0 + Int32($1) })
    }

    /// A seeded stream of 48-bit numbers (a linear congruential generator's high bits).
    struct Draws {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 16
        }
    }

    static func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

    @Test(arguments: levels)
    func activationRowsMatchTheFormula(isa: Int32) {
        for top: Float in [255, 191] {
            for x in Self.rows() {
                var q = [UInt8](repeating: 77, count: x.count), scale: Float = 0, zero: Int32 = -1
                mb_quantize_row(isa, x, Int32(x.count), top, &q, &scale, &zero)
                let expected = Self.expectedActivations(x, top: top)
                #expect(q == expected.q && Self.same(scale, expected.scale) && zero == expected.zero,
                        "isa \(isa), top \(top), k \(x.count): scale \(scale) vs \(expected.scale), zero \(zero) vs \(expected.zero)")
            }
        }
    }

    @Test(arguments: levels)
    func weightRowsMatchTheFormula(isa: Int32) {
        for x in Self.rows() {
            var q = [Int8](repeating: 77, count: x.count), scale: Float = 0, sum: Int32 = -1
            mb_quantize_weight_row(isa, x, Int32(x.count), 127, &q, &scale, &sum)
            let expected = Self.expectedWeights(x, levels: 127)
            #expect(q == expected.q && Self.same(scale, expected.scale) && sum == expected.sum,
                    "isa \(isa), k \(x.count): scale \(scale) vs \(expected.scale), sum \(sum) vs \(expected.sum)")
        }
    }

    /// The way back, with and without bias and accumulation, rows strided in both buffers, sums that wrap.
    @Test(arguments: levels)
    func epilogueMatchesTheFormula(isa: Int32) {
        var draws = Draws(state: 5)
        for width in [1, 7, 8, 15, 16, 17, 64, 100] {
            let rows = 3, ldp = width + 5, ldy = width + 3
            let part = (0..<rows * ldp).map { i in i == 1 ? Int32.max : Int32(truncatingIfNeeded: Int64(draws.next() % 2_000_000) - 1_000_000) }
            let scales = Self.random(rows, seed: 11).map { abs($0) / 100 }, zeros: [Int32] = [0, 128, 255]
            let wScales = Self.random(width, seed: 12).map { abs($0) / 50 }
            let sums = (0..<width).map { j in j == 0 ? Int32.min : Int32(truncatingIfNeeded: Int64(draws.next() % 200_000) - 100_000) }
            let bias = Self.random(width, seed: 13), old = Self.random(rows * ldy, seed: 14)
            for withBias in [false, true] {
                for accumulate in [false, true] {
                    var y = old
                    bias.withUnsafeBufferPointer { b in
                        mb_int8_epilogue(isa, part, Int32(rows), Int32(width), Int32(ldp), scales, zeros, wScales, sums,
                                         withBias ? b.baseAddress : nil, accumulate, false, &y, Int32(ldy))
                    }
                    var expected = old
                    for r in 0..<rows {
                        for j in 0..<width {
                            var v = Float(part[r * ldp + j] &- zeros[r] &* sums[j]) * (scales[r] * wScales[j])
                            if withBias { v += bias[j] }
                            expected[r * ldy + j] = accumulate ? old[r * ldy + j] + v : v
                        }
                    }
                    #expect(zip(y, expected).allSatisfy { Self.same($0, $1) },
                            "isa \(isa), width \(width), bias \(withBias), accumulate \(accumulate)")
                }
            }
        }
    }

    /// GELU in the way back (the FFN's first product): at every level the floats of `VectorMath.geluErf` (the Swift
    /// kernel's, operation for operation) applied to the formula's, bit for bit, and within 2e-6 · max(1, |v|) of
    /// GELU in float64 — from the saturated ends (|v| up to ~40) through zero.
    @Test(arguments: levels)
    func epilogueAppliesGELULikeTheSwiftKernel(isa: Int32) {
        var draws = Draws(state: 9)
        for width in [1, 7, 8, 15, 16, 17, 24, 40, 48, 64, 100] {
            let rows = 4, ldp = width + 2, ldy = width + 1
            let part = (0..<rows * ldp).map { _ in Int32(Int64(draws.next() % 400_000) - 200_000) }
            let scales: [Float] = [1e-4, 3e-5, 2e-3, 1e-5], zeros: [Int32] = [0, 17, 128, 255]
            let wScales = Self.random(width, seed: 21).map { abs($0) / 10 }
            let sums = (0..<width).map { _ in Int32(Int64(draws.next() % 2_000) - 1_000) }
            let bias = Self.random(width, seed: 22)
            var y = [Float](repeating: .nan, count: rows * ldy)
            bias.withUnsafeBufferPointer { b in
                mb_int8_epilogue(isa, part, Int32(rows), Int32(width), Int32(ldp), scales, zeros, wScales, sums, b.baseAddress,
                                 false, true, &y, Int32(ldy))
            }
            var values = [Float](repeating: 0, count: rows * width)
            for r in 0..<rows {
                for j in 0..<width {
                    values[r * width + j] = Float(part[r * ldp + j] &- zeros[r] &* sums[j]) * (scales[r] * wScales[j]) + bias[j]
                }
            }
            var expected = values
            VectorMath.geluErf(&expected, count: expected.count)
            for r in 0..<rows {
                for j in 0..<width {
                    let v = Double(values[r * width + j]), got = y[r * ldy + j]
                    let exact = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
                    #expect(Self.same(got, expected[r * width + j]), "isa \(isa), width \(width), v \(v): \(got) vs \(expected[r * width + j])")
                    #expect(abs(Double(got) - exact) <= 2e-6 * max(1, abs(v)), "isa \(isa), v \(v): \(got) vs \(exact)")
                }
            }
        }
    }
}
