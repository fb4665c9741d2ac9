import Testing
@testable import TensorFiles

@Suite struct StoredTensorTests {
    /// Every finite half value survives float → half → float; rounding is to nearest even.
    @Test func halfConversionsRoundTrip() {
        for bits in 0...UInt16.max where (bits & 0x7c00) != 0x7c00 {
            let f = halfToFloat(bits)
            let back = floatToHalf(f)
            #expect(back == bits || (f == 0 && back & 0x7fff == 0), "bits \(bits)")
        }
        #expect(floatToHalf(1.0 + 1.0 / 4096) == floatToHalf(1.0))  // halfway, rounds to even
        #expect(floatToHalf(65520) == 0x7c00)  // overflows to infinity
        #expect(halfToFloat(0x0001) == Float(5.960464477539063e-08))  // smallest subnormal
        #expect(halfToFloat(0xfc00) == -.infinity)
        #expect(halfToFloat(0x7e00).isNaN)
    }

    @Test func bfloat16RoundsToNearestEven() {
        #expect(floatToBFloat16(1) == 0x3f80)
        #expect(floatToBFloat16(Float(bitPattern: 0x3f80_8000)) == 0x3f80)  // halfway, even stays
        #expect(floatToBFloat16(Float(bitPattern: 0x3f81_8000)) == 0x3f82)  // halfway, odd rounds up
        #expect(floatToBFloat16(.nan) & 0x7fc0 == 0x7fc0)
    }

    /// Conversion on every core, in chunks of 64 Ki elements: every element of a tensor of several chunks and a
    /// ragged tail, from every floating format to every other, is what the one-value functions give.
    @Test func largeTensorsConvertElementByElement() {
        let n = 3 * 65_536 + 4_321
        var generator = SystemRandomNumberGenerator()
        let floats = (0..<n).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator)) }
        let owned = OwnedBytes(count: n * 4)
        owned.pointer.bindMemory(to: Float.self).baseAddress!.update(from: floats, count: n)
        let source = StoredTensor(dtype: .float32, shape: [n], bytes: owned.bytes, owner: owned)
        for from in [StorageDType.float32, .float64, .float16, .bfloat16] {
            let input = from == .float32 ? source : source.converted(to: from)
            let wide = input.toFloats()
            for to in [StorageDType.float32, .float16, .bfloat16] where to != from {
                let out = input.converted(to: to)
                #expect(out.dtype == to && out.shape == [n] && out.bytes.count == n * to.size)
                let mismatches: Int
                switch to {
                case .float16: mismatches = (0..<n).filter { out.bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) != floatToHalf(wide[$0]) }.count
                case .bfloat16: mismatches = (0..<n).filter { out.bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) != floatToBFloat16(wide[$0]) }.count
                default: mismatches = (0..<n).filter { out.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) != wide[$0].bitPattern }.count
                }
                #expect(mismatches == 0, "\(from) → \(to): \(mismatches) elements differ")
            }
        }
    }

    /// Q, K and V weights become one matrix: rows in order, each part converted to the format asked for; parts of
    /// different widths are an error, not a garbled matrix.
    @Test func matricesStackRowWiseInTheFormatAskedFor() throws {
        func tensor(_ values: [Float], rows: Int, as format: StorageDType) -> StoredTensor {
            let owned = OwnedBytes(count: values.count * 4)
            owned.pointer.bindMemory(to: Float.self).baseAddress!.update(from: values, count: values.count)
            return StoredTensor(dtype: .float32, shape: [rows, values.count / rows], bytes: owned.bytes, owner: owned)
                .converted(to: format)
        }
        let a = tensor([1, 2, 3, 4], rows: 2, as: .float16), b = tensor([5, 6], rows: 1, as: .float32)
        let stacked = try StoredTensor.stacked([a, b], format: .float32)
        #expect(stacked.shape == [3, 2])
        #expect(stacked.dtype == .float32)
        #expect(stacked.toFloats() == [1, 2, 3, 4, 5, 6])
        let half = try StoredTensor.stacked([a, b], format: .bfloat16)
        #expect(half.dtype == .bfloat16 && half.bytes.count == 12 && half.toFloats() == [1, 2, 3, 4, 5, 6])
        #expect(throws: TensorFileError.self) { try StoredTensor.stacked([a, tensor([1, 2, 3], rows: 1, as: .float32)], format: .float32) }
        #expect(throws: TensorFileError.self) { try StoredTensor.stacked([], format: .float32) }
    }
}
