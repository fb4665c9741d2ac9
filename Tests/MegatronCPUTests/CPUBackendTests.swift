import Testing
import TensorFiles
@testable import MegatronCPU

@Suite struct CPUBackendTests {
    final class ForeignTensor: DeviceTensor {
        let shape = [1, 4]
    }

    /// A library user who hands the CPU backend another backend's tensor gets an error, not a crash.
    @Test func anotherBackendsTensorIsAnError() {
        let backend = CPUBackend()
        #expect(throws: BackendError.self) { try backend.download(ForeignTensor()) }
        #expect(throws: BackendError.self) { try backend.activate(ForeignTensor(), .gelu) }
        #expect(throws: BackendError.self) { try backend.gatherRows(ForeignTensor(), rows: [0]) }
    }

    /// Attention reads Q | K | V from one (N, 3H) tensor: a tensor of another width, or rows that do not match the
    /// batch, is an error that names the shape.
    @Test func attentionOfAWrongShapeIsAnError() {
        let backend = CPUBackend()
        let narrow = Tensor(shape: [4, 16], values: [Float](repeating: 0, count: 64))  // 16 is not 3H
        #expect(throws: BackendError.self) { try backend.attention(qkv: narrow, batch: 1, sequence: 4, heads: 2, keep: [[1, 1, 1, 1]]) }
        let qkv = Tensor(shape: [4, 24], values: [Float](repeating: 0, count: 96))
        #expect(throws: BackendError.self) { try backend.attention(qkv: qkv, batch: 1, sequence: 4, heads: 3, keep: [[1, 1, 1, 1]]) }
        #expect(throws: BackendError.self) { try backend.attention(qkv: qkv, segments: [0..<3], heads: 2) }
        // Packed segments must be consecutive, non-empty and cover the rows (an empty one, a gap).
        #expect(throws: BackendError.self) { try backend.attention(qkv: qkv, segments: [0..<2, 2..<2, 2..<4], heads: 2) }
        #expect(throws: BackendError.self) { try backend.attention(qkv: qkv, segments: [0..<2, 3..<4], heads: 2) }
        #expect(throws: Never.self) { try backend.attention(qkv: qkv, batch: 2, sequence: 2, heads: 2, keep: [[1, 1], [1, 0]]) }
    }

    /// q, k, v (N, width) each, row-major → qkv (N, 3·width) (+ `padding`, more rows of 3·width): each row's q,
    /// then its k, then its v.
    static func qkv(_ q: [Float], _ k: [Float], _ v: [Float], width: Int, padding: [Float] = []) -> Tensor {
        let n = q.count / width
        return Tensor(shape: [n + padding.count / (3 * width), 3 * width], values: (0..<n).flatMap { row in
            [q, k, v].flatMap { $0[(row * width)..<((row + 1) * width)] }
        } + padding)
    }

    /// A right-padded sequence's attention is the same bits as the sequence alone, whatever the padding and however
    /// the query rows are blocked, through OpenBLAS (lanes 0) and the attention kernel: so a job's outputs do not
    /// depend on how its inputs were batched.
    @Test(arguments: [4, 128], [0] + AttentionKernelTests.backendWidths) func paddingDoesNotChangeASequencesBits(queryBlock: Int, lanes: Int) throws {
        let backend = CPUBackend(queryBlock: queryBlock, attentionLanes: lanes)
        let heads = 2, d = 8, h = heads * d
        var generator = SystemRandomNumberGenerator()
        for n in [1, 5, 13] {
            let s = n + 7  // padded length
            func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -2...2, using: &generator) } }
            let q = values(n * h), k = values(n * h), v = values(n * h)
            let garbage = values((s - n) * 3 * h)  // the padding rows' Q | K | V
            let alone = try backend.download(backend.attention(
                qkv: Self.qkv(q, k, v, width: h), batch: 1, sequence: n, heads: heads, keep: [[Float](repeating: 1, count: n)]))
            let withPadding = try backend.download(backend.attention(
                qkv: Self.qkv(q, k, v, width: h, padding: garbage), batch: 1, sequence: s,
                heads: heads, keep: [[Float](repeating: 1, count: n) + [Float](repeating: 0, count: s - n)]))
            let a = Array(UnsafeBufferPointer(start: alone.data, count: n * h))
            let b = Array(UnsafeBufferPointer(start: withPadding.data, count: n * h))
            #expect(a == b, "n = \(n): the real rows must not change with padding")
        }
        #expect(CPUBackend.paddedLength([1, 1, 0]) == 2)
        #expect(CPUBackend.paddedLength([1, 0, 1]) == nil, "a mask with a hole keeps all keys")
        #expect(CPUBackend.paddedLength([0, 0]) == nil)
        #expect(CPUBackend.paddedLength([1, 1]) == 2)
    }

    /// Sequences packed end to end (no padding) attend over their own rows only: each one's context is the same bits
    /// as when it runs alone (OpenBLAS and the attention kernel).
    @Test(arguments: [4, 128], [0] + AttentionKernelTests.backendWidths) func packedSequencesGetTheirOwnBits(queryBlock: Int, lanes: Int) throws {
        let backend = CPUBackend(queryBlock: queryBlock, attentionLanes: lanes)
        let heads = 2, d = 8, h = heads * d, lengths = [5, 1, 13, 7]
        var generator = SystemRandomNumberGenerator()
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -2...2, using: &generator) } }
        let total = lengths.reduce(0, +)
        let q = values(total * h), k = values(total * h), v = values(total * h)
        var segments: [Range<Int>] = [], next = 0
        for n in lengths {
            segments.append(next..<next + n)
            next += n
        }
        let packed = try backend.download(backend.attention(qkv: Self.qkv(q, k, v, width: h), segments: segments, heads: heads))
        for rows in segments {
            func part(_ x: [Float]) -> [Float] { Array(x[rows.lowerBound * h..<rows.upperBound * h]) }
            let alone = try backend.download(backend.attention(qkv: Self.qkv(part(q), part(k), part(v), width: h), batch: 1,
                                                               sequence: rows.count, heads: heads,
                                                               keep: [[Float](repeating: 1, count: rows.count)]))
            #expect(Array(UnsafeBufferPointer(start: packed.data + rows.lowerBound * h, count: rows.count * h))
                    == Array(UnsafeBufferPointer(start: alone.data, count: rows.count * h)), "rows \(rows)")
        }
    }

    /// `linear(…, activation:)` (the activation inside the product where oneDNN splits the rows, after it elsewhere)
    /// gives what `linear` and then `activate` give: every product library, FP32, BF16 and int8 weights, every
    /// activation, rows below and above `OneDNN.rowSplitRows`. Tolerance 1e-5 (the same products; the fused GELU and
    /// the separate one may round differently in the last bit).
    @Test(arguments: [CPUBackend.Products.oneDNN, .openBLAS])
    func anActivationInTheProductEqualsOneAfterIt(products: CPUBackend.Products) throws {
        let backend = CPUBackend(products: products)
        let (n, k) = (130, 64)
        let w = OneDNNTests.random(n * k, seed: 21), bias = OneDNNTests.random(n, seed: 22)
        let owned = OwnedBytes(count: n * k * 4)
        w.withUnsafeBytes { owned.pointer.copyMemory(from: $0) }
        let stored = StoredTensor(dtype: .float32, shape: [n, k], bytes: owned.bytes, owner: owned)
        for dtype in [DType.fp32, .bf16, .int8] where products == .oneDNN || dtype != .int8 {
            let matrix = try backend.prepareMatrix(stored, dtype: dtype, use: .product), b = backend.prepareVector(bias)
            for rows in [3, 40, 300] {
                let x = Tensor(shape: [rows, k], values: OneDNNTests.random(rows * k, seed: 23))
                for activation in [Activation.gelu, .geluTanh, .relu, .tanh] {
                    let fused = try backend.download(backend.linear(x, weight: matrix, bias: b, activation: activation)).toArray()
                    let separate = try backend.linear(x, weight: matrix, bias: b, accumulateInto: nil)
                    try backend.activate(separate, activation)
                    let worst = zip(fused, try backend.download(separate).toArray()).map { abs($0 - $1) }.max() ?? 0
                    #expect(worst <= 1e-5, "\(products) \(dtype) rows \(rows) \(activation): worst \(worst)")
                }
            }
        }
    }
}
