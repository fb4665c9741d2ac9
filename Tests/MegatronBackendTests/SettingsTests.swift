import Foundation
import Testing
import MegatronBackend

@Suite struct SettingsTests {
    /// Set variables are kept as written; unset and empty ones are absent; others in the environment are ignored.
    @Test func readsTheVariablesItKnows() throws {
        let settings = Settings(environment: ["MEGATRON_BERT_THREADS": "4", "MEGATRON_BERT_CACHE": "", "HOME": "/root",
                                              "MEGATRON_BERT_CUDA_POOLING": "device"])
        #expect(settings[.threads] == "4")
        #expect(settings[.cache] == nil)
        #expect(settings[.cudaPooling] == "device")
        #expect(settings.fields == ["MEGATRON_BERT_THREADS": "4", "MEGATRON_BERT_CUDA_POOLING": "device"])
        #expect(try System.threads(settings) == 4)
        #expect(try System.threads(Settings(environment: [:])) == System.cores)
        #expect(throws: BackendError.self) { try System.threads(Settings(environment: ["MEGATRON_BERT_THREADS": "0"])) }
    }

    /// The README's Settings table has a row for every variable, and names no variable Settings does not read.
    @Test func theReadmeTableMatches() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let table = readme.components(separatedBy: "### Settings").dropFirst().first?.components(separatedBy: "\n## ").first ?? ""
        for variable in Settings.Variable.allCases {
            #expect(table.contains("`\(variable.rawValue)`"), "README's Settings table lacks \(variable.rawValue)")
        }
        let pattern = try Regex("`(MEGATRON_BERT_[A-Z0-9_]+)`")
        let named = Set(table.matches(of: pattern).compactMap { $0.output[1].substring.map(String.init) })
        #expect(named == Set(Settings.Variable.allCases.map(\.rawValue).filter { $0.hasPrefix("MEGATRON_BERT_") }))
    }
}
