import CQuantizedRows
import CSmallProducts
import Testing
@testable import MegatronCPU

/// The AVX2 int8 panel kernel (`mb_panel_product_u8s8_avx2`, every int8 product on CPUs without VNNI): exact integer
/// sums on the int8 panel layout for inputs 0…191 and weights within ±85 (the levels without VNNI), the extremes
/// included (every pair at 2 · 191 · 85 = 32,470 and its negative: no 16-bit saturation), on every row count its
/// tiles handle their own way (1–4, then fours, and more rows than one block of rows), K that ends in a partial quad,
/// columns that fill no sub-panel (the columns past them never written); and its fused epilogue giving the floats of
/// `mb_int8_epilogue` on its sums, bit for bit, at every vector level this CPU has.
@Suite(.enabled(if: mb_panel_products_int8_avx2_available(), "this CPU has no AVX2"))
struct PanelProductsAVX2Tests {
    /// x (rows, k) u8 and W (n, k) s8, and W in panels (64-byte aligned; `deallocate` the base).
    struct Operands {
        let x: [UInt8], w: [Int8]
        let base: UnsafeMutablePointer<Int8>, panels: UnsafeMutablePointer<Int8>, stride: Int

        init(rows: Int, n: Int, k: Int, extreme: Bool, seed: UInt64) {
            var draws = QuantizedRowsTests.Draws(state: seed)
            x = (0..<(rows * k)).map { _ in UInt8(extreme ? 191 : Int(draws.next() % 192)) }
            w = (0..<(n * k)).map { i in Int8(extreme ? (i / k % 2 == 0 ? 85 : -85) : Int(draws.next() % 171) - 85) }
            let (packed, stride) = PanelProductsTests.int8Panels(w, n: n, k: k)
            base = .allocate(capacity: packed.count + 64)
            panels = base + (64 - Int(bitPattern: base) % 64) % 64
            panels.update(from: packed, count: packed.count)
            self.stride = stride
        }

        func sum(_ r: Int, _ c: Int, k: Int) -> Int {
            (0..<k).reduce(0) { $0 + Int(x[r * k + $1]) * Int(w[c * k + $1]) }
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 7, 8, 13, 32, 37])
    func sumsAreExact(rows: Int) {
        for (n, k) in [(64, 64), (37, 100), (9, 7), (130, 1024), (70, 201), (16, 3)] {
            for extreme in [false, true] {
                let operands = Operands(rows: rows, n: n, k: k, extreme: extreme, seed: UInt64(rows * 1000 + n))
                defer { operands.base.deallocate() }
                let ldy = n + 3  // y wider than the product: the columns past n must stay as they were
                var y = [Int32](repeating: -1, count: rows * ldy)
                mb_panel_product_u8s8_avx2(operands.x, Int32(rows), Int32(k), operands.panels, operands.stride, Int32(n), nil, &y, ldy)
                var wrong = 0, outsideKept = true
                for r in 0..<rows {
                    for c in 0..<ldy {
                        guard c < n else { outsideKept = outsideKept && y[r * ldy + c] == -1; continue }
                        if Int(y[r * ldy + c]) != operands.sum(r, c, k: k) { wrong += 1 }
                    }
                }
                #expect(wrong == 0, "rows \(rows), n \(n), k \(k), extreme \(extreme): \(wrong) sums wrong")
                #expect(outsideKept, "rows \(rows), n \(n), k \(k): a column past n was written")
            }
        }
    }

    /// More rows than the kernel takes at a time (256 KB of them: 64 rows at k = 4096), the last block short.
    @Test func rowsBeyondOneBlockAreExact() {
        let (rows, n, k) = (150, 20, 4096)
        let operands = Operands(rows: rows, n: n, k: k, extreme: false, seed: 5)
        defer { operands.base.deallocate() }
        var y = [Int32](repeating: -1, count: rows * n)
        mb_panel_product_u8s8_avx2(operands.x, Int32(rows), Int32(k), operands.panels, operands.stride, Int32(n), nil, &y, n)
        let wrong = (0..<(rows * n)).filter { Int(y[$0]) != operands.sum($0 / n, $0 % n, k: k) }.count
        #expect(wrong == 0, "\(wrong) sums wrong")
    }

    /// With `finish`, y is what `mb_int8_epilogue` makes of the kernel's own sums, bit for bit: with and without bias,
    /// accumulation and GELU, at every vector level.
    @Test(arguments: QuantizedRowsTests.levels)
    func fusedEpilogueIsTheEpilogue(level: Int32) {
        let (rows, n, k) = (9, 37, 100)
        let operands = Operands(rows: rows, n: n, k: k, extreme: false, seed: 11)
        defer { operands.base.deallocate() }
        var sums = [Int32](repeating: 0, count: rows * n)
        mb_panel_product_u8s8_avx2(operands.x, Int32(rows), Int32(k), operands.panels, operands.stride, Int32(n), nil, &sums, n)
        let scale = QuantizedRowsTests.random(rows, seed: 12, scale: 0.01).map(abs), zero = (0..<rows).map { Int32($0 * 17 % 192) }
        let wscale = QuantizedRowsTests.random(n, seed: 13, scale: 0.01).map(abs)
        let colsum = (0..<n).map { c in Int32((0..<k).reduce(0) { $0 + Int(operands.w[c * k + $1]) }) }
        let bias = QuantizedRowsTests.random(n, seed: 14), y0 = QuantizedRowsTests.random(rows * n, seed: 15)
        for (useBias, accumulate, gelu) in [(false, false, false), (true, false, true), (true, true, false), (false, true, false)] {
            var expected = y0, fused = y0
            bias.withUnsafeBufferPointer { b in
                let bias = useBias ? b.baseAddress : nil
                mb_int8_epilogue(level, sums, Int32(rows), Int32(n), Int32(n), scale, zero, wscale, colsum, bias, accumulate, gelu,
                                 &expected, Int32(n))
                scale.withUnsafeBufferPointer { scale in zero.withUnsafeBufferPointer { zero in
                    wscale.withUnsafeBufferPointer { wscale in colsum.withUnsafeBufferPointer { colsum in
                        fused.withUnsafeMutableBufferPointer { y in
                            var finish = mb_int8_finish(level: level, scale: scale.baseAddress, zero: zero.baseAddress,
                                                        wscale: wscale.baseAddress, colsum: colsum.baseAddress, bias: bias,
                                                        accumulate: accumulate, gelu: gelu, y: y.baseAddress, ldy: Int32(n))
                            mb_panel_product_u8s8_avx2(operands.x, Int32(rows), Int32(k), operands.panels, operands.stride,
                                                       Int32(n), &finish, nil, 0)
                        }
                    } }
                } }
            }
            let different = zip(fused, expected).filter { !QuantizedRowsTests.same($0, $1) }.count
            #expect(different == 0, "level \(level), bias \(useBias), accumulate \(accumulate), gelu \(gelu): \(different) floats differ")
        }
    }
}
