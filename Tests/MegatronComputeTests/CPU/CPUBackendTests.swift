import Testing
@testable import MegatronCompute

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

    /// A right-padded sequence's attention is the same bits as the sequence alone, whatever the padding and however
    /// the query rows are blocked: so a job's outputs do not depend on how its inputs were batched.
    @Test(arguments: [4, 128]) func paddingDoesNotChangeASequencesBits(queryBlock: Int) throws {
        let backend = CPUBackend(queryBlock: queryBlock)
        let heads = 2, d = 8, h = heads * d
        var generator = SystemRandomNumberGenerator()
        for n in [1, 5, 13] {
            let s = n + 7  // padded length
            func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -2...2, using: &generator) } }
            let q = values(n * h), k = values(n * h), v = values(n * h)
            func padded(_ x: [Float]) -> Tensor { Tensor(shape: [s, h], values: x + values((s - n) * h)) }  // garbage padding
            let alone = try backend.download(backend.attention(
                query: Tensor(shape: [n, h], values: q), key: Tensor(shape: [n, h], values: k), value: Tensor(shape: [n, h], values: v),
                batch: 1, sequence: n, heads: heads, keep: [[Float](repeating: 1, count: n)]))
            let withPadding = try backend.download(backend.attention(
                query: padded(q), key: padded(k), value: padded(v), batch: 1, sequence: s, heads: heads,
                keep: [[Float](repeating: 1, count: n) + [Float](repeating: 0, count: s - n)]))
            let a = Array(UnsafeBufferPointer(start: alone.data, count: n * h))
            let b = Array(UnsafeBufferPointer(start: withPadding.data, count: n * h))
            #expect(a == b, "n = \(n): the real rows must not change with padding")
        }
        #expect(CPUBackend.paddedLength([1, 1, 0]) == 2)
        #expect(CPUBackend.paddedLength([1, 0, 1]) == nil, "a mask with a hole keeps all keys")
        #expect(CPUBackend.paddedLength([0, 0]) == nil)
        #expect(CPUBackend.paddedLength([1, 1]) == 2)
    }
}
