import Foundation
import Testing
import TensorFiles
import MegatronBERT
@testable import MegatronModel
import TestSupport

/// The fixtures written by scripts/make_fixtures.py (see Fixtures/NOTES.md).
enum Fixtures {
    static let root = Bundle.module.path(forResource: "Fixtures", ofType: nil)!

    static func model(_ name: String) -> String { root + "/models/" + name }

    static func batch(_ name: String = "batch") throws -> Batch {
        try Batch(json: Data(contentsOf: URL(fileURLWithPath: root + "/inputs/\(name).json")))
    }

    static func expected(_ name: String) throws -> [String: StoredTensor] {
        try SafeTensorsFile(path: root + "/expected/\(name).safetensors").tensors
    }

    /// A copy of a fixture model directory that a test may edit.
    static func copy(_ name: String) throws -> String {
        let target = Scratch.path("fixture")
        try FileManager.default.copyItem(atPath: model(name), toPath: target)
        return target
    }
}

/// The largest |actual − expected| over all elements; shapes must agree.
func maxAbsDifference(_ actual: Tensor, _ expected: StoredTensor) -> Double {
    guard actual.shape == expected.shape else { return .infinity }
    let reference = expected.toDoubles()
    var worst = 0.0
    for i in 0..<actual.count { worst = max(worst, abs(Double(actual[i]) - reference[i])) }
    return worst
}

/// Checks every expected output against the model's, within `tolerance`; returns the worst difference.
@discardableResult
func expectOutputs(_ outputs: ModelOutputs, match expected: [String: StoredTensor], tolerance: Double,
                   sourceLocation: SourceLocation = #_sourceLocation) -> Double {
    var worst = 0.0
    #expect(Set(outputs.all.map(\.name)).isSuperset(of: expected.keys), sourceLocation: sourceLocation)
    for (name, reference) in expected {
        guard let actual = outputs[name] else {
            Issue.record("missing output \(name)", sourceLocation: sourceLocation)
            continue
        }
        let difference = maxAbsDifference(actual, reference)
        worst = max(worst, difference)
        #expect(difference <= tolerance, "\(name): max |Δ| \(difference) > \(tolerance), shape \(actual.shape) vs \(reference.shape)",
                sourceLocation: sourceLocation)
    }
    return worst
}
