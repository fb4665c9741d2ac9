import Foundation
import Testing
@testable import TensorFiles

/// Mutation fuzzing of the readers: seeded random bit flips, byte overwrites, insertions and truncations of
/// real fixture files. Every mutant must parse or throw `TensorFileError`; a crash or a hang fails the run.
/// FUZZ_ITERATIONS raises the count (CI runs the default; longer runs are recorded in the closing notes).
@Suite struct FuzzTests {
    static let iterations = ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"].flatMap(Int.init) ?? 1500

    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutants(of file: String, seed: UInt64, _ body: ([UInt8]) -> Void) throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture(file))))
        var random = Generator(state: seed)
        for _ in 0..<iterations {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                guard !bytes.isEmpty else { break }
                let at = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<5, using: &random) {
                case 0: bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
                case 1: bytes[at] = UInt8.random(in: 0...255, using: &random)
                case 2: bytes[at] = [0x00, 0xff, 0x7f, 0x80][Int.random(in: 0..<4, using: &random)]
                case 3: bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
                default: bytes.removeSubrange(at...)
                }
            }
            body(bytes)
        }
    }

    static func parses(_ bytes: [UInt8], _ parse: (UnsafeRawBufferPointer, AnyObject) throws -> Void) {
        let owner = OwnedBytes(count: bytes.count)
        bytes.withUnsafeBytes { owner.pointer.copyMemory(from: $0) }
        do {
            try parse(UnsafeRawBufferPointer(rebasing: owner.bytes[0..<bytes.count]), owner)
        } catch is TensorFileError {
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
    }

    @Test(arguments: ["views.pt", "views_legacy.pt", "views_deflated.pt"])
    func torchCheckpoints(file: String) throws {
        try Self.mutants(of: file, seed: 1) { bytes in
            Self.parses(bytes) { raw, owner in _ = try TorchCheckpoint(bytes: raw, owner: owner) }
        }
    }

    @Test func safetensorsHeaders() throws {
        try Self.mutants(of: "views.safetensors", seed: 2) { bytes in
            Self.parses(bytes) { raw, owner in _ = try SafeTensorsFile(bytes: raw, owner: owner) }
        }
    }

    @Test func zipArchivesAndInflate() throws {
        try Self.mutants(of: "deflated.zip", seed: 3) { bytes in
            Self.parses(bytes) { raw, _ in
                let zip = try ZipArchive(bytes: raw)
                for entry in zip.entries { _ = try zip.contents(of: entry) }  // sizes are bounded by the reader itself
            }
        }
    }
}
