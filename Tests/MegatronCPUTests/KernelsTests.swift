import Foundation
import Testing
@testable import MegatronCPU

/// The CPU backend's Swift kernels (`Kernels`).
@Suite struct KernelsTests {
    @Test func softmaxMasksKeysAndHandlesAFullyMaskedRow() {
        var row: [Float] = [1, 2, 3, 100, 0.5, -1, 2.5, 1, 4, 0]  // 10 wide: a SIMD8 block and a tail
        let keep: [Float] = [1, 1, 1, 0, 1, 1, 1, 1, 1, 0]
        var inverse: [Float] = [0]
        row.withUnsafeMutableBufferPointer {
            Kernels.softmaxNumerators($0.baseAddress!, rows: 1, width: 10, keep: keep, inverseSums: &inverse)
        }
        let values: [Double] = [1, 2, 3, 100, 0.5, -1, 2.5, 1, 4, 0]
        let e = zip(values, keep).map { $1 == 0 ? 0 : Foundation.exp($0 - 4) }
        let total = e.reduce(0, +)
        for j in 0..<10 { #expect(abs(Double(row[j] * inverse[0]) - e[j] / total) < 1e-6, "\(j)") }
        #expect(row[3] == 0 && row[9] == 0)
        var masked: [Float] = [5, 6]
        masked.withUnsafeMutableBufferPointer {
            Kernels.softmaxNumerators($0.baseAddress!, rows: 1, width: 2, keep: [0, 0], inverseSums: &inverse)
        }
        #expect(masked == [1, 1] && inverse == [0.5])
    }
}
