import Foundation
import Testing
import TensorFiles

/// Sources/TensorFiles/JSONNumbers.swift: the same bytes as Foundation's JSONEncoder for every float written, and
/// NaN / infinities refused.
@Suite struct JSONNumbersTests {
    @Test func theBytesAreJSONEncoders() throws {
        var generator = SystemRandomNumberGenerator()
        var values: [Float] = [0, -0, 1, -1, 100, 0.1, 1e16, 1e-7, 16_777_216, 123_456.79, .greatestFiniteMagnitude,
                               -.greatestFiniteMagnitude, .leastNormalMagnitude, .leastNonzeroMagnitude, 0.5, 2.5e-5]
        // Every magnitude JSON lines of embeddings, logits and scores hold, and random bit patterns.
        for exponent in -40...38 {
            for _ in 0..<40 {
                let value = Float.random(in: 1..<10, using: &generator) * powf(10, Float(exponent)) * (Bool.random() ? 1 : -1)
                if value.isFinite { values.append(value) }  // 9e38 overflows
            }
        }
        for _ in 0..<20_000 {
            let value = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))
            if value.isFinite { values.append(value) }
        }
        var ours: [UInt8] = []
        try JSONNumbers.appendArray(values, to: &ours)
        let encoder = JSONEncoder()
        let theirs = try encoder.encode(values)
        #expect(ours == Array(theirs))
        // Each read back as the same float.
        let back = try JSONDecoder().decode([Float].self, from: Data(ours))
        let same = zip(back, values).allSatisfy { (read: Float, written: Float) -> Bool in read.bitPattern == written.bitPattern }
        #expect(back.count == values.count && same)
    }

    @Test func nanAndInfinitiesAreRefusedByIndex() {
        for bad: Float in [.nan, .infinity, -.infinity] {
            var out: [UInt8] = []
            #expect(throws: JSONNumberError.self) { try JSONNumbers.appendArray([1, 2, bad], to: &out) }
            do { try JSONNumbers.appendArray([1, bad], to: &out) } catch {
                #expect("\(error)".contains("value 1 is"), "\(error)")
            }
        }
    }
}
