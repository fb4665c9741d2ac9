import CDNNL
import CPackedBF16
import CQuantizedRows
import Foundation
import Testing
@testable import MegatronCPU

/// oneDNN's packed products against a float64 product written out here, for the shapes the model uses and the
/// awkward ones (one row, rows and columns that fill no kernel tile), with and without bias and accumulation.
@Suite(.enabled(if: OneDNN.shared != nil, "oneDNN did not start"))
struct OneDNNTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
        }
    }

    /// Values rounded to BF16 (their bits), as the backend rounds them.
    static func bf16(_ values: [Float]) -> [UInt16] {
        var bits = [UInt16](repeating: 0, count: values.count)
        OneDNN.roundToBFloat16(values, into: &bits, count: values.count)
        return bits
    }

    /// BF16 bits back to FP32.
    static func widen(_ bits: [UInt16]) -> [Float] { bits.map { Float(bitPattern: UInt32($0) << 16) } }

    /// Of an output y (rows, stride ≥ columns) against expected (rows, columns) in float64: the largest difference in
    /// the first `columns` columns, and whether every element past them is still NaN (nothing written there).
    static func compare(_ y: [Float], _ expected: [Double], rows: Int, columns: Int, stride: Int) -> (worst: Double, outsideKept: Bool) {
        var worst = 0.0, outsideKept = true
        for r in 0..<rows {
            for c in 0..<stride {
                if c < columns { worst = max(worst, abs(Double(y[r * stride + c]) - expected[r * columns + c])) }
                else { outsideKept = outsideKept && y[r * stride + c].isNaN }
            }
        }
        return (worst, outsideKept)
    }

    /// y (rows, n) = x · Wᵀ + bias + y0, in float64.
    static func reference(_ x: [Float], _ w: [Float], rows: Int, n: Int, k: Int, bias: [Float]?, y0: [Float]?) -> [Double] {
        var y = [Double](repeating: 0, count: rows * n)
        for r in 0..<rows {
            for c in 0..<n {
                var sum = Double(bias?[c] ?? 0) + Double(y0?[r * n + c] ?? 0)
                for i in 0..<k { sum += Double(x[r * k + i]) * Double(w[c * k + i]) }
                y[r * n + c] = sum
            }
        }
        return y
    }

    // (250, 20000, 8): 250 rows of two 10,000-column blocks (10 MB of output each) go in two chunks of rows.
    // (1100, 4096, 16) and (300, 130, 64): at least `rowSplitRows` rows, split by rows where the matrix is packed whole.
    @Test(arguments: [(1, 64, 32), (8, 1024, 1024), (13, 200, 96), (128, 130, 64), (3, 7, 5), (250, 20000, 8), (1100, 4096, 16),
                      (300, 130, 64)])
    func fp32ProductsMatchFloat64(rows: Int, n: Int, k: Int) throws {
        let onednn = try #require(OneDNN.shared)
        let w = Self.random(n * k, seed: 1), x = Self.random(rows * k, seed: 2), bias = Self.random(n, seed: 3)
        let y0 = Self.random(rows * n, seed: 4)
        let packed = try #require(w.withUnsafeBytes { onednn.pack($0.baseAddress!, sourceType: dnnl_f32, n: n, k: k, precision: .fp32) })
        for (useBias, accumulate) in [(false, false), (true, false), (false, true), (true, true)] {
            var y = accumulate ? y0 : [Float](repeating: .nan, count: rows * n)
            let ok = bias.withUnsafeBufferPointer { b in
                onednn.multiply(x, rows: rows, matrix: packed, bias: useBias ? b.baseAddress : nil, accumulate: accumulate, into: &y)
            }
            #expect(ok)
            let expected = Self.reference(x, w, rows: rows, n: n, k: k, bias: useBias ? bias : nil, y0: accumulate ? y0 : nil)
            // FP32 accumulation over K ≤ 1024 terms of magnitude ≤ 1: well inside 1e-3.
            let worst = zip(y, expected).map { abs(Double($0) - $1) }.max() ?? 0
            #expect(worst < 1e-3, "rows \(rows), n \(n), k \(k), bias \(useBias), accumulate \(accumulate): worst \(worst)")
        }
    }

    /// FP32 weights are packed once, whole, each core's block of columns a view into it (no second copy), where
    /// oneDNN packs FP32 at all (AVX-512).
    @Test(.enabled(if: OneDNN.shared?.prepacksFP32 == true, "oneDNN packs no FP32 weights on this CPU"))
    func blocksAreViewsIntoTheWholeMatrix() throws {
        let onednn = try #require(OneDNN.shared)
        let (n, k) = (3072, 256)
        let w = Self.random(n * k, seed: 20)
        let packed = try #require(w.withUnsafeBytes { onednn.pack($0.baseAddress!, sourceType: dnnl_f32, n: n, k: k, precision: .fp32) })
        let whole = try #require(packed.whole)
        var desc = whole.desc
        #expect(packed.byteCount == dnnl_memory_desc_get_size(&desc))
        #expect(packed.blocks.count == min(Parallel.cores, n / 64))
        #expect(packed.blocks.first?.data == whole.data)
        #expect(packed.blocks.map(\.columns.count).reduce(0, +) == n)
    }

    @Test func unpackingGivesBackTheWeights() throws {
        let onednn = try #require(OneDNN.shared)
        let (n, k) = (300, 96)
        let w = Self.random(n * k, seed: 5)
        let packed = try #require(w.withUnsafeBytes { onednn.pack($0.baseAddress!, sourceType: dnnl_f32, n: n, k: k, precision: .fp32) })
        var out = [Float](repeating: .nan, count: n * k)
        #expect(onednn.unpack(packed, into: &out))
        #expect(out == w)
    }

    // (200, 4096, 32): two blocks of 2,048 columns, whose 200 rows go in chunks of 112 and 88; (600, 1024, 64): split
    // by rows where the matrix is packed whole.
    @Test(arguments: [(16, 256, 512), (200, 4096, 32), (600, 1024, 64)])
    func bf16ProductsRoundTheInputsOnly(rows: Int, n: Int, k: Int) throws {
        let onednn = try #require(OneDNN.shared)
        let w = Self.random(n * k, seed: 6), x = Self.random(rows * k, seed: 7)
        let wBits = Self.bf16(w), xBits = Self.bf16(x)
        guard let packed = wBits.withUnsafeBytes({ onednn.pack($0.baseAddress!, sourceType: dnnl_bf16, n: n, k: k, precision: .bf16) }) else {
            return  // no BF16 kernel on this CPU: the backend multiplies BF16 weights in FP32 (PrecisionTests covers it)
        }
        var y = [Float](repeating: .nan, count: rows * n)
        #expect(onednn.multiply(x, rows: rows, matrix: packed, bias: nil, accumulate: false, into: &y, widenBF16: false))
        // The product of the BF16-rounded operands, accumulated in FP32: only accumulation error remains.
        let expected = Self.reference(Self.widen(xBits), Self.widen(wBits), rows: rows, n: n, k: k, bias: nil, y0: nil)
        let worst = zip(y, expected).map { abs(Double($0) - $1) }.max() ?? 0
        #expect(worst < 1e-3, "worst \(worst)")
    }

    /// Where BF16 dot products are slower than FP32 ones, BF16 weights are widened and multiplied in FP32 with the
    /// FP32 inputs: the product of the BF16-rounded weights and the unrounded inputs, with bias and accumulation.
    /// (2, 2200, 8192): 73 MB widened, more than `widenBytes`, so 1,152 columns per core in slices of 256 (8 MB each);
    /// (300, 4130, 96): widened whole, rows split between the cores (`rowSplitRows`), columns that fill no 64-column
    /// tile; (33, 200, 120): column blocks, K padded to 128 in both layouts; K = 80 pads differently (to 96 in BF16,
    /// 80 in FP32), so that product is refused and goes the BF16 way.
    @Test(arguments: [(2, 2200, 8192), (300, 4130, 96), (33, 200, 120), (64, 128, 80)])
    func bf16WeightsWidenedMultiplyInFP32(rows: Int, n: Int, k: Int) throws {
        let onednn = try #require(OneDNN.shared)
        let w = Self.random(n * k, seed: 16), x = Self.random(rows * k, seed: 17), bias = Self.random(n, seed: 18)
        let y0 = Self.random(rows * n, seed: 19)
        let wBits = Self.bf16(w)
        guard let packed = wBits.withUnsafeBytes({ onednn.pack($0.baseAddress!, sourceType: dnnl_bf16, n: n, k: k, precision: .bf16) }) else {
            return  // no BF16 kernel on this CPU
        }
        var y = y0
        let widened = bias.withUnsafeBufferPointer { b in
            onednn.multiplyWidened(x, rows: rows, matrix: packed, bias: b.baseAddress, accumulate: true, into: &y)
        }
        guard k % 32 == 0 || k % 32 > 16 else {
            #expect(!widened && OneDNN.widenable(packed) == false)
            return
        }
        #expect(widened)
        let expected = Self.reference(x, Self.widen(wBits), rows: rows, n: n, k: k, bias: bias, y0: y0)
        let worst = zip(y, expected).map { abs(Double($0) - $1) }.max() ?? 0
        #expect(worst < 1e-4, "rows \(rows), n \(n), k \(k): worst \(worst)")
        #expect(onednn.kernelsUsed.contains { $0.hasPrefix("fp32-on-bf16:") })
    }

    /// The C widening against the two layouts' formulas, with and without AVX-512.
    @Test func widenedTilesFollowBothLayouts() {
        let tiles = 3
        let bits = (0..<tiles * 1024).map { UInt16(truncatingIfNeeded: $0 &* 2654435761 >> 7) }
        for vectors: Int32 in [0, 1] {
            var out = [Float](repeating: .nan, count: tiles * 1024)
            mb_widen_bf16_tiles(vectors, bits, tiles, &out)
            var ok = true
            for t in 0..<tiles {
                for kk in 0..<16 {
                    for c in 0..<64 {
                        let source = bits[t * 1024 + ((kk / 2) * 64 + c) * 2 + kk % 2]
                        ok = ok && out[t * 1024 + kk * 64 + c].bitPattern == UInt32(source) << 16
                    }
                }
            }
            #expect(ok, "vectors \(vectors)")
        }
    }

    @Test func bf16WidensOnlyWhereItsDotProductsAreSlow() {
        #expect(OneDNN.widensBF16(isa: dnnl_cpu_isa_avx512_core_bf16, vendor: "GenuineIntel", setting: nil))
        #expect(!OneDNN.widensBF16(isa: dnnl_cpu_isa_avx512_core_bf16, vendor: "AuthenticAMD", setting: nil))
        #expect(!OneDNN.widensBF16(isa: dnnl_cpu_isa_avx512_core_amx, vendor: "GenuineIntel", setting: nil))
        #expect(!OneDNN.widensBF16(isa: dnnl_cpu_isa_avx512_core_bf16, vendor: "GenuineIntel", setting: "bf16"))
        #expect(OneDNN.widensBF16(isa: dnnl_cpu_isa_avx512_core_amx, vendor: "GenuineIntel", setting: "FP32"))
    }

    /// int8 products are exact integer sums of the quantized operands: y = Σ (qx − zero) · qw · scale_x · scale_w
    /// + bias, compared in float64 (only the FP32 scaling rounds).
    @Test(arguments: [(5, 96, 64), (600, 1024, 64)])
    func int8ProductsAreExactOnTheQuantizedOperands(rows: Int, n: Int, k: Int) throws {
        let onednn = try #require(OneDNN.shared)
        let w = Self.random(n * k, seed: 8), x = Self.random(rows * k, seed: 9), bias = Self.random(n, seed: 10)
        let packed = try #require(w.withUnsafeBufferPointer { onednn.quantize($0.baseAddress!, n: n, k: k) })
        var y = [Float](repeating: .nan, count: rows * n)
        let ok = bias.withUnsafeBufferPointer { b in onednn.multiply(x, rows: rows, matrix: packed, bias: b.baseAddress, accumulate: false, into: &y) }
        #expect(ok)
        var qw = [Int8](repeating: 0, count: n * k), qx = [UInt8](repeating: 0, count: rows * k)
        var wScales = [Float](repeating: 0, count: n), wSums = [Int32](repeating: 0, count: n)
        w.withUnsafeBufferPointer { w in
            qw.withUnsafeMutableBufferPointer { qw in
                for c in 0..<n {
                    mb_quantize_weight_row(QuantizedRows.widest, w.baseAddress! + c * k, Int32(k), Float(onednn.weightLevels), qw.baseAddress! + c * k,
                                           &wScales[c], &wSums[c])
                }
            }
        }
        #expect(wScales == packed.scales && wSums == packed.sums)
        let rowsQuantized = QuantizedRows(x, rows: rows, k: k, levels: onednn.inputLevels, into: &qx)
        var worst = 0.0
        for r in 0..<rows {
            for c in 0..<n {
                var sum = 0
                for i in 0..<k { sum += (Int(qx[r * k + i]) - Int(rowsQuantized.zeros[r])) * Int(qw[c * k + i]) }
                let expected = Double(sum) * Double(rowsQuantized.scales[r]) * Double(packed.scales[c]) + Double(bias[c])
                worst = max(worst, abs(Double(y[r * n + c]) - expected))
            }
        }
        // Values of magnitude ≤ ~k · 1: FP32 scaling of an exact integer sum stays within 1e-4.
        #expect(worst < 1e-4, "rows \(rows), n \(n), k \(k): worst \(worst)")
    }

    @Test func roundingToBFloat16IsToNearestEven() {
        let cases: [Float] = [1, Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), Float(bitPattern: 0x3f80_8001),
                              -2.5, .infinity, .nan]
        let expected: [UInt16] = [0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xc020, 0x7f80]
        let values = Array([[Float]](repeating: cases, count: 5).joined())  // 35: two whole vectors of 16 and a tail
        var bits = [UInt16](repeating: 0, count: values.count)
        OneDNN.roundToBFloat16(values, into: &bits, count: values.count)
        for copy in 0..<5 {
            #expect(Array(bits[(copy * 7)..<(copy * 7 + 6)]) == expected, "copy \(copy)")
            #expect(Float(bitPattern: UInt32(bits[copy * 7 + 6]) << 16).isNaN)
        }
    }

    /// The transposed rounding (the weight gradient's dy) writes the plain rounding's bits, transposed: whole 16 × 16
    /// tiles, edge rows and columns, a source whose rows are longer than the block, NaN included.
    @Test(arguments: [(1, 1), (16, 16), (35, 18), (17, 64), (128, 33)])
    func transposedRoundingIsThePlainRoundingTransposed(rows: Int, columns: Int) {
        let lda = columns + 3, ldo = rows + 5
        var values: [Float] = (0..<(rows * lda)).map { i in
            let a = Float(i % 97) * 0.013, b = Float(i % 13) * 1.7
            return a - b + 1e-3 / Float(i + 1)
        }
        values[values.count / 2] = .nan
        let plain = Self.bf16(values)
        var out = [UInt16](repeating: 0xffff, count: columns * ldo)
        mb_round_bf16_transposed(values, rows, columns, lda, &out, ldo)
        var same = true, untouched = true
        for c in 0..<columns {
            for r in 0..<ldo {
                if r < rows { same = same && out[c * ldo + r] == plain[r * lda + c] } else { untouched = untouched && out[c * ldo + r] == 0xffff }
            }
        }
        #expect(same && untouched)
    }
}
