import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel

/// Fixtures/tasks (scripts/make_task_fixtures.py, transformers 5.24.0): tiny Megatron-BERT models with a
/// 60-token cased vocabulary (5 padded rows after it), model_max_length 24, and the reference answers.
enum TaskFixtures {
    static let root = Fixtures.root + "/tasks"

    /// Scores are compared within this (the fp32 bound; the references are float64 or float32).
    static let tolerance = 1e-4

    static func pipeline(_ name: String, batchSize: Int = 8) throws -> Pipeline {
        try Pipeline(path: root + "/" + name, batchSize: batchSize)
    }

    /// expected.json's cases for one task.
    static func cases(_ task: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: root + "/expected.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return json[task] as! [[String: Any]]
    }
}

extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String { self[key] as! String }
    func optionalString(_ key: String) -> String? { self[key] as? String }
    func int(_ key: String) -> Int? { (self[key] as? NSNumber)?.intValue }
    func double(_ key: String) -> Double { (self[key] as! NSNumber).doubleValue }
    func doubles(_ key: String) -> [Double] { (self[key] as! [NSNumber]).map(\.doubleValue) }
    func objects(_ key: String) -> [[String: Any]] { self[key] as! [[String: Any]] }
}
