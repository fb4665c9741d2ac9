import CSmallProducts
import Testing
import TensorFiles
@testable import MegatronCPU

/// The small-product kernel (AVX2 + FMA, FP32 products of few rows on plain weights): against a float64 product on
/// every row count it handles in its own way (1–4, and more in fours), lengths that fill no vector, odd column
/// ranges, with and without bias and accumulation; and the CPU backend taking it for few rows.
@Suite(.enabled(if: mb_small_products_available(), "this CPU has no AVX2 and FMA"))
struct SmallProductsTests {
    @Test(arguments: [1, 2, 3, 4, 5, 8, 13, 16])
    func productsMatchFloat64(rows: Int) {
        for (n, k, first, count) in [(64, 64, 0, 64), (37, 100, 3, 33), (9, 7, 0, 9), (130, 1024, 64, 65)] {
            let w = OneDNNTests.random(n * k, seed: 11), x = OneDNNTests.random(rows * k, seed: 12)
            let bias = OneDNNTests.random(n, seed: 13), y0 = OneDNNTests.random(rows * n, seed: 14)
            for (useBias, accumulate) in [(false, false), (true, false), (false, true), (true, true)] {
                var y = accumulate ? y0 : [Float](repeating: .nan, count: rows * n)
                bias.withUnsafeBufferPointer { b in
                    mb_small_product_f32(x, Int32(rows), Int32(k), w, Int32(first), Int32(count), useBias ? b.baseAddress : nil,
                                         accumulate, &y, Int32(n))
                }
                let expected = OneDNNTests.reference(x, w, rows: rows, n: n, k: k, bias: useBias ? bias : nil, y0: accumulate ? y0 : nil)
                var worst = 0.0, untouchedKept = true
                for r in 0..<rows {
                    for c in 0..<n {
                        let value = y[r * n + c]
                        if (first..<(first + count)).contains(c) {
                            worst = max(worst, abs(Double(value) - expected[r * n + c]))
                        } else {
                            // Columns outside the range are left as they were.
                            untouchedKept = untouchedKept && (accumulate ? value == y0[r * n + c] : value.isNaN)
                        }
                    }
                }
                // FP32 accumulation over K ≤ 1024 terms of magnitude ≤ 1: well inside 1e-3.
                #expect(worst < 1e-3, "rows \(rows), n \(n), k \(k), columns \(first)..<\(first + count), bias \(useBias), accumulate \(accumulate): worst \(worst)")
                #expect(untouchedKept, "rows \(rows), n \(n): a column outside \(first)..<\(first + count) changed")
            }
        }
    }

    /// With plain FP32 weights (here `products: .openBLAS`; by default on CPUs without oneDNN's pre-packed kernels),
    /// the backend multiplies up to `smallProductRows` rows with the kernel and more with OpenBLAS: both match.
    @Test func theBackendTakesItForFewRows() throws {
        let backend = CPUBackend(products: .openBLAS)
        let (n, k) = (300, 96)
        let w = OneDNNTests.random(n * k, seed: 15), bias = OneDNNTests.random(n, seed: 16)
        let owned = OwnedBytes(count: n * k * 4)
        w.withUnsafeBytes { owned.pointer.copyMemory(from: $0) }
        let matrix = try backend.prepareMatrix(StoredTensor(dtype: .float32, shape: [n, k], bytes: owned.bytes, owner: owned),
                                               dtype: .fp32, use: .product)
        for rows in [1, CPUBackend.smallProductRows, CPUBackend.smallProductRows + 1] {
            let x = OneDNNTests.random(rows * k, seed: 17)
            let y = try backend.download(backend.linear(Tensor(shape: [rows, k], values: x), weight: matrix,
                                                        bias: backend.prepareVector(bias), accumulateInto: nil))
            let expected = OneDNNTests.reference(x, w, rows: rows, n: n, k: k, bias: bias, y0: nil)
            let worst = zip(y.toArray(), expected).map { abs(Double($0) - $1) }.max() ?? 0
            #expect(worst < 1e-3, "rows \(rows): worst \(worst)")
        }
        #expect(backend.kernelsUsed.contains("small:avx2"))
        #expect(backend.kernelsUsed.contains { $0.hasPrefix("openblas:") })
    }
}
