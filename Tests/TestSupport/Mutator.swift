import Foundation
import MegatronBackend

/// Seeded mutation of bytes for the fuzz tests of every test target: bit flips, byte overwrites, insertions and
/// truncations, plus structural mutations aimed at recursion and sizes (a slice repeated many times, a slice copied
/// elsewhere, 0xFF runs where lengths live). FUZZ_ITERATIONS sets how many mutants (default 1500) and FUZZ_SEED moves
/// the seeds, for long runs.
public enum Mutator {
    public static let iterations = ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"].flatMap(Int.init) ?? 1500
    public static let seedOffset = ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap(UInt64.init) ?? 0

    /// Calls `body` with `iterations` mutants of `original`, each 1 to 4 mutations away from it.
    public static func mutants(of original: [UInt8], seed: UInt64, _ body: ([UInt8]) -> Void) {
        var random = SeededRandom(seed: seed &+ seedOffset &* 0x1000_0000)
        for _ in 0..<iterations {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                guard !bytes.isEmpty else { break }
                let at = Int.random(in: 0..<bytes.count, using: &random)
                let length = min(bytes.count - at, Int.random(in: 1...16, using: &random))
                switch Int.random(in: 0..<8, using: &random) {
                case 0: bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
                case 1: bytes[at] = UInt8.random(in: 0...255, using: &random)
                case 2: bytes[at] = [0x00, 0xff, 0x7f, 0x80][Int.random(in: 0..<4, using: &random)]
                case 3: bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
                case 4:  // a slice repeated: deep nesting, long runs of one opcode or bracket
                    let slice = Array(bytes[at..<(at + length)])
                    let times = Int.random(in: 2...2000, using: &random)
                    bytes.insert(contentsOf: Array([[UInt8]](repeating: slice, count: times).joined()), at: at)
                case 5:  // a slice copied elsewhere: references to what is not there yet, or to itself
                    let slice = Array(bytes[at..<(at + length)])
                    bytes.insert(contentsOf: slice, at: Int.random(in: 0...bytes.count, using: &random))
                case 6:  // lengths and counts made huge
                    for k in at..<min(bytes.count, at + [2, 4, 8][Int.random(in: 0..<3, using: &random)]) { bytes[k] = 0xff }
                default: bytes.removeSubrange(at...)
                }
            }
            body(bytes)
        }
    }
}
