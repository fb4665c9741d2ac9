import Foundation
import TestSupport
import Testing
import MegatronBERT
@testable import MegatronModel

/// The config and batch readers on mutated JSON (see `Mutator`): every mutant is read or refused with a
/// `ModelError`, never a crash.
@Suite struct ConfigFuzzTests {
    static func refusesCleanly(_ body: () throws -> Void) {
        do { try body() } catch is ModelError {} catch { Issue.record("unexpected error type: \(error)") }
    }

    @Test func configs() throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.model("megatron-ForSequenceClassification") + "/config.json")))
        Mutator.mutants(of: original, seed: 11) { mutant in
            Self.refusesCleanly { _ = try BertConfig(json: Data(mutant)) }
        }
    }

    @Test func batches() throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.root + "/inputs/batch.json")))
        Mutator.mutants(of: original, seed: 12) { mutant in
            Self.refusesCleanly { _ = try Batch(json: Data(mutant)) }
        }
    }
}
