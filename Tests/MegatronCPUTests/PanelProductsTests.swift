import CDNNL
import CSmallProducts
import Testing
@testable import MegatronCPU

/// The AVX-512 panel kernel (FP32 products of few rows on weights in 64-column panels): against a float64 product on
/// every row count it groups its own way (1–4, then fours, up to `MB_PANEL_ROWS`), K that fills no 16-step block,
/// columns that fill no panel (the padding never written), with and without bias and accumulation; and oneDNN's FP32
/// packing giving that layout, the backend's few-row products taking the kernel and agreeing with oneDNN's own.
@Suite(.enabled(if: mb_panel_products_available(), "this CPU has no AVX-512"))
struct PanelProductsTests {
    /// W (n, k) row-major laid out as panels: panel p holds W[64p + c, i] at p · stride + i · 64 + c, zero padding.
    static func panels(_ w: [Float], n: Int, k: Int) -> (values: [Float], stride: Int) {
        let stride = (k + 15) / 16 * 16 * 64
        var values = [Float](repeating: 0, count: (n + 63) / 64 * stride)
        for j in 0..<n {
            for i in 0..<k { values[j / 64 * stride + i * 64 + j % 64] = w[j * k + i] }
        }
        return (values, stride)
    }

    @Test(arguments: [1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 32])
    func productsMatchFloat64(rows: Int) throws {
        for (n, k) in [(64, 64), (37, 100), (9, 7), (130, 1024), (200, 33)] {
            let w = OneDNNTests.random(n * k, seed: 31), x = OneDNNTests.random(rows * k, seed: 32)
            let bias = OneDNNTests.random(n, seed: 33), y0 = OneDNNTests.random(rows * n, seed: 34)
            let (packed, stride) = Self.panels(w, n: n, k: k)
            let ldy = n + 5  // y wider than the product: the columns past n must stay as they were
            for (useBias, accumulate) in [(false, false), (true, false), (false, true), (true, true)] {
                var y = [Float](repeating: .nan, count: rows * ldy)
                for r in 0..<rows { for c in 0..<n where accumulate { y[r * ldy + c] = y0[r * n + c] } }
                // The panels start 64-byte aligned, as oneDNN's memory does.
                let aligned = UnsafeMutablePointer<Float>.allocate(capacity: packed.count + 16)
                defer { aligned.deallocate() }
                let start = aligned + (16 - Int(bitPattern: aligned) % 64 / 4) % 16
                start.update(from: packed, count: packed.count)
                bias.withUnsafeBufferPointer { b in
                    mb_panel_product_f32(x, Int32(rows), Int32(k), start, stride, Int32(n), useBias ? b.baseAddress : nil,
                                         accumulate, &y, ldy)
                }
                let expected = OneDNNTests.reference(x, w, rows: rows, n: n, k: k, bias: useBias ? bias : nil, y0: accumulate ? y0 : nil)
                let (worst, outsideKept) = OneDNNTests.compare(y, expected, rows: rows, columns: n, stride: ldy)
                // FP32 accumulation over K ≤ 1024 terms of magnitude ≤ 1: well inside 1e-3.
                #expect(worst < 1e-3, "rows \(rows), n \(n), k \(k), bias \(useBias), accumulate \(accumulate): worst \(worst)")
                #expect(outsideKept, "rows \(rows), n \(n), k \(k): a column past n was written")
            }
        }
    }

    /// oneDNN packs the model's FP32 matrices in the panel layout (or the backend does not take the kernel), and a
    /// product of few rows through the kernel equals oneDNN's own kernel on the same packed weights within FP32
    /// rounding; more rows than `panelRows` stay with oneDNN.
    @Test(.enabled(if: OneDNN.shared?.prepacksFP32 == true && OneDNN.panelProducts, "oneDNN packs no FP32 weights on this CPU, or MEGATRON_BERT_PANEL_PRODUCTS=0"),
          arguments: [(1, 3072, 1024), (8, 1024, 4096), (32, 29056, 64), (5, 130, 40)])
    func oneDNNsLayoutIsThePanels(rows: Int, n: Int, k: Int) throws {
        let onednn = try #require(OneDNN.shared)
        let w = OneDNNTests.random(n * k, seed: 41), x = OneDNNTests.random(rows * k, seed: 42), bias = OneDNNTests.random(n, seed: 43)
        let matrix = try #require(w.withUnsafeBytes { onednn.pack($0.baseAddress!, sourceType: dnnl_f32, n: n, k: k, precision: .fp32) })
        let stride = try #require(matrix.panelStride, "oneDNN packed a (\(n), \(k)) FP32 weight in another layout")
        #expect(stride == (k + 15) / 16 * 16 * 64)
        var panels = [Float](repeating: .nan, count: rows * n), theirs = panels
        bias.withUnsafeBufferPointer { b in
            #expect(onednn.multiplyPanels(x, rows: rows, matrix: matrix, bias: b.baseAddress, accumulate: false, into: &panels, widenBF16: false))
            #expect(onednn.multiplyByColumns(x, rows: rows, matrix: matrix, bias: b.baseAddress, accumulate: false, into: &theirs))
            #expect(!onednn.multiplyPanels(x, rows: OneDNN.panelRows + 1, matrix: matrix, bias: b.baseAddress, accumulate: false, into: &theirs,
                                           widenBF16: false))
        }
        let worst = zip(panels, theirs).map { abs($0 - $1) }.max() ?? .nan
        #expect(worst < 1e-3, "rows \(rows), n \(n), k \(k): worst \(worst)")
        #expect(onednn.kernelsUsed.contains("panel:avx512"))
    }

    /// W (n, k) s8 row-major laid out as int8 panels: K padded to 64, W[64p + c, i] at p · stride + (i / 4) · 256 +
    /// c · 4 + i % 4, zero padding.
    static func int8Panels(_ w: [Int8], n: Int, k: Int) -> (values: [Int8], stride: Int) {
        let stride = (k + 63) / 64 * 64 * 64
        var values = [Int8](repeating: 0, count: (n + 63) / 64 * stride)
        for j in 0..<n {
            for i in 0..<k { values[j / 64 * stride + i / 4 * 256 + j % 64 * 4 + i % 4] = w[j * k + i] }
        }
        return (values, stride)
    }

    /// The int8 kernel gives the exact integer sums, the extremes included (255 × ±127 everywhere: VNNI sums in 32
    /// bits, no 16-bit pair to saturate).
    @Test(.enabled(if: mb_panel_products_int8_available(), "this CPU has no AVX-512 VNNI"), arguments: [1, 3, 4, 8, 13, 32])
    func int8ProductsAreExact(rows: Int) {
        var state: UInt64 = 7
        func next(_ range: ClosedRange<Int>) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return range.lowerBound + Int(state >> 33) % range.count
        }
        for (n, k) in [(64, 64), (37, 100), (130, 1024), (9, 4), (70, 200)] {
            for extreme in [false, true] {
                let x = (0..<(rows * k)).map { _ in UInt8(extreme ? 255 : next(0...255)) }
                let w = (0..<(n * k)).map { i in Int8(extreme ? (i / k % 2 == 0 ? 127 : -127) : next(-127...127)) }
                let (packed, stride) = Self.int8Panels(w, n: n, k: k)
                let aligned = UnsafeMutablePointer<Int8>.allocate(capacity: packed.count + 64)
                defer { aligned.deallocate() }
                let start = aligned + (64 - Int(bitPattern: aligned) % 64) % 64
                start.update(from: packed, count: packed.count)
                let ldy = n + 3
                var y = [Int32](repeating: -1, count: rows * ldy)
                mb_panel_product_u8s8(x, Int32(rows), Int32(k), start, stride, Int32(n), &y, ldy)
                var wrong = 0, outsideKept = true
                for r in 0..<rows {
                    for c in 0..<ldy {
                        guard c < n else { outsideKept = outsideKept && y[r * ldy + c] == -1; continue }
                        var sum = 0
                        for i in 0..<k { sum += Int(x[r * k + i]) * Int(w[c * k + i]) }
                        if Int(y[r * ldy + c]) != sum { wrong += 1 }
                    }
                }
                #expect(wrong == 0, "rows \(rows), n \(n), k \(k), extreme \(extreme): \(wrong) sums wrong")
                #expect(outsideKept, "rows \(rows), n \(n), k \(k): a column past n was written")
            }
        }
    }

    /// oneDNN packs int8 weights for VNNI in the int8 panel layout, and few-row products through the kernel give the
    /// same outputs as oneDNN's kernel, bit for bit (exact int32 sums, the same epilogue).
    @Test(.enabled(if: OneDNN.panelProductsInt8 && OneDNN.shared?.hasVNNI == true,
                   "this CPU has no AVX-512 VNNI, int8 products run on AMX, or MEGATRON_BERT_PANEL_PRODUCTS=0"),
          arguments: [(1, 3072, 1024), (8, 1024, 4096), (32, 2000, 64), (5, 130, 40)])
    func oneDNNsInt8LayoutIsThePanels(rows: Int, n: Int, k: Int) throws {
        let onednn = try #require(OneDNN.shared)
        let w = OneDNNTests.random(n * k, seed: 51), x = OneDNNTests.random(rows * k, seed: 52), bias = OneDNNTests.random(n, seed: 53)
        let matrix = try #require(w.withUnsafeBufferPointer { onednn.quantize($0.baseAddress!, n: n, k: k) })
        let stride = try #require(matrix.panelStride, "oneDNN packed a (\(n), \(k)) int8 weight in another layout")
        #expect(stride == (k + 63) / 64 * 64 * 64)
        var panels = [Float](repeating: .nan, count: rows * n), theirs = panels
        bias.withUnsafeBufferPointer { b in
            #expect(onednn.multiplyByColumns(x, rows: rows, matrix: matrix, bias: b.baseAddress, accumulate: false, into: &panels))
            #expect(onednn.multiplyByColumns(x, rows: rows, matrix: matrix, bias: b.baseAddress, accumulate: false, into: &theirs, panels: false))
        }
        #expect(panels == theirs)
        #expect(onednn.kernelsUsed.contains("panel:avx512_vnni"))
    }

    /// Both BF16 kernels on hand-made BF16 panels (W[64p + c, i] at p · stride + (i / 2) · 128 + c · 2 + i % 2), against
    /// float64: the widened one with FP32 inputs, the dot-product one (where the CPU has AVX512_BF16) with the inputs
    /// rounded to BF16 — each on the BF16 weights, exactly what it multiplies.
    @Test(arguments: [1, 3, 4, 8, 13, 32])
    func bf16ProductsMatchFloat64(rows: Int) {
        for (n, k) in [(64, 64), (37, 100), (130, 1024), (9, 2)] {
            let w = OneDNNTests.random(n * k, seed: 61), x = OneDNNTests.random(rows * k, seed: 62)
            let bias = OneDNNTests.random(n, seed: 63), y0 = OneDNNTests.random(rows * n, seed: 64)
            let wBits = OneDNNTests.bf16(w), xBits = OneDNNTests.bf16(x)
            let stride = (k + 31) / 32 * 32 * 64
            var packed = [UInt16](repeating: 0, count: (n + 63) / 64 * stride)
            for j in 0..<n { for i in 0..<k { packed[j / 64 * stride + i / 2 * 128 + j % 64 * 2 + i % 2] = wBits[j * k + i] } }
            let aligned = UnsafeMutablePointer<UInt16>.allocate(capacity: packed.count + 32)
            defer { aligned.deallocate() }
            let start = aligned + (32 - Int(bitPattern: aligned) % 64 / 2) % 32
            start.update(from: packed, count: packed.count)
            for dot in mb_panel_products_bf16_available() ? [false, true] : [false] {
                for (useBias, accumulate) in [(false, false), (true, true)] {
                    var y = accumulate ? y0 : [Float](repeating: .nan, count: rows * n)
                    bias.withUnsafeBufferPointer { b in
                        if dot {
                            mb_panel_product_bf16(xBits, Int32(rows), Int32(k), start, stride, Int32(n), useBias ? b.baseAddress : nil,
                                                  accumulate, &y, n)
                        } else {
                            mb_panel_product_bf16_widened(x, Int32(rows), Int32(k), start, stride, Int32(n), useBias ? b.baseAddress : nil,
                                                          accumulate, &y, n)
                        }
                    }
                    let expected = OneDNNTests.reference(dot ? OneDNNTests.widen(xBits) : x, OneDNNTests.widen(wBits), rows: rows, n: n, k: k,
                                                         bias: useBias ? bias : nil, y0: accumulate ? y0 : nil)
                    let worst = zip(y, expected).map { abs(Double($0) - $1) }.max() ?? .nan
                    // FP32 accumulation over K ≤ 1024 products of magnitude ≤ 1: well inside 1e-3.
                    #expect(worst < 1e-3, "dot \(dot), rows \(rows), n \(n), k \(k), bias \(useBias), accumulate \(accumulate): worst \(worst)")
                }
            }
        }
    }

    /// oneDNN packs BF16 weights in the BF16 panel layout, and the backend's few-row BF16 products through either
    /// kernel match float64 on what they multiply.
    @Test(.enabled(if: OneDNN.panelProducts && OneDNN.shared?.hasBFloat16 == true && !OneDNN.onAMX,
                   "this CPU has no BF16 products, BF16 products run on AMX, or MEGATRON_BERT_PANEL_PRODUCTS=0"),
          arguments: [(8, 1024, 4096), (5, 130, 40)])
    func oneDNNsBF16LayoutIsThePanels(rows: Int, n: Int, k: Int) throws {
        let onednn = try #require(OneDNN.shared)
        let w = OneDNNTests.random(n * k, seed: 71), x = OneDNNTests.random(rows * k, seed: 72)
        let wBits = OneDNNTests.bf16(w), xBits = OneDNNTests.bf16(x)
        let matrix = try #require(wBits.withUnsafeBytes { onednn.pack($0.baseAddress!, sourceType: dnnl_bf16, n: n, k: k, precision: .bf16) })
        let stride = try #require(matrix.panelStride, "oneDNN packed a (\(n), \(k)) BF16 weight in another layout")
        #expect(stride == (k + 31) / 32 * 32 * 64)
        for widen in OneDNN.panelProductsBF16 ? [true, false] : [true] {
            var y = [Float](repeating: .nan, count: rows * n)
            #expect(onednn.multiplyPanels(x, rows: rows, matrix: matrix, bias: nil, accumulate: false, into: &y, widenBF16: widen))
            let expected = OneDNNTests.reference(widen ? x : OneDNNTests.widen(xBits), OneDNNTests.widen(wBits), rows: rows, n: n, k: k, bias: nil, y0: nil)
            let worst = zip(y, expected).map { abs(Double($0) - $1) }.max() ?? .nan
            #expect(worst < 1e-3, "widen \(widen), rows \(rows), n \(n), k \(k): worst \(worst)")
        }
    }
}
