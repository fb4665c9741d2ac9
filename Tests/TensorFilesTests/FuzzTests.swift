import Foundation
import TestSupport
import Testing
@testable import TensorFiles

/// Mutation fuzzing of the readers (see `Mutator`): every mutant of a real fixture file must parse or throw the
/// reader's own error; a crash or a hang fails the run. Longer runs are recorded in the closing notes.
@Suite struct FuzzTests {
    static func mutants(of file: String, seed: UInt64, _ body: ([UInt8]) -> Void) throws {
        Mutator.mutants(of: try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture(file)))), seed: seed, body)
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

    /// The pickle machine alone, on the pickles inside the torch fixtures.
    @Test func pickles() throws {
        for file in ["views.pt", "views_deflated.pt"] {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture(file))))
            let pickle = try bytes.withUnsafeBytes { raw -> [UInt8] in
                let zip = try ZipArchive(bytes: raw)
                let entry = try #require(zip.entries.first { $0.name.hasSuffix("data.pkl") })
                return Array(try zip.contents(of: entry).bytes)
            }
            Mutator.mutants(of: pickle, seed: 4) { mutant in
                Self.parses(mutant) { raw, _ in
                    var machine = PickleMachine(bytes: raw)
                    machine.reducer = TorchCheckpoint.reduce
                    machine.persistentLoader = { id in try TorchCheckpoint.storage(from: id, path: "") }
                    let value = try machine.load()
                    TorchCheckpoint.forEachTensor(in: value, prefix: "") { _, _ in }
                    _ = value.description
                }
            }
        }
    }

    /// JSON: a config.json and JSON Lines inputs, mutated.
    @Test func json() throws {
        let documents = [
            #"{"architectures": ["MegatronBertForMaskedLM"], "hidden_size": 32, "id2label": {"0": "A", "1": "B"}, "layer_norm_eps": 1e-05, "model_type": "megatron-bert", "num_attention_heads": 4, "vocab_size": 65}"#,
            #"{"text": "The capital of France is [MASK].", "text_pair": "caf\u00e9 \ud83d\ude00", "id": [1, 2.5, null, true]}"#,
            #"{"question": "Who?", "context": "NVIDIA trained it.", "choices": [[["a"]], {"b": {"c": []}}]}"#,
        ]
        for (k, document) in documents.enumerated() {
            Mutator.mutants(of: Array(document.utf8), seed: 5 + UInt64(k)) { mutant in
                do {
                    _ = try JSONValue.parse(Data(mutant))
                } catch is JSONParseError {
                } catch {
                    Issue.record("unexpected error type: \(error)")
                }
            }
        }
    }
}
