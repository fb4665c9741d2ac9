import Foundation
import Testing
@testable import MegatronTraining

/// Entity-level metrics against seqeval (scripts/make_ner_fixtures.py: 1,200 random cases in seqeval's default mode
/// and 300 in strict mode for each of six schemes, each 1–4 sentences): every key seqeval reports, per type and
/// overall, within 1e-9, and no key of ours that seqeval lacks.
@Suite struct EntityMetricsTests {
    struct Case: Decodable {
        var mode: String
        var truth: [[String]]
        var predicted: [[String]]
        var expected: [String: Double]
    }

    struct Fixture: Decodable {
        var source: String
        var cases: [Case]
    }

    @Test func scoresMatchSeqeval() throws {
        let url = URL(fileURLWithPath: GradientTests.fixtures + "/entity-metrics.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        #expect(fixture.cases.count == 3000)
        var failures = 0
        for (index, item) in fixture.cases.enumerated() {
            let mode: EntityMetrics.Mode = item.mode == "lenient" ? .lenient : .strict(try #require(TagScheme(rawValue: item.mode)))
            let scores = try EntityMetrics.scores(truth: item.truth, predicted: item.predicted, mode: mode)
            let agrees = Set(scores.keys) == Set(item.expected.keys)
                && item.expected.allSatisfy { abs((scores[$0.key] ?? .nan) - $0.value) <= 1e-9 }
            if !agrees {
                failures += 1
                if failures <= 3 {
                    Issue.record("case \(index) (\(item.mode)): truth \(item.truth), predicted \(item.predicted): ours \(scores.sorted { $0.key < $1.key }), seqeval \(item.expected.sorted { $0.key < $1.key })")
                }
            }
        }
        #expect(failures == 0, "\(failures) of \(fixture.cases.count) cases differ from seqeval")
    }

    /// Hand-checked: lenient mode reads `I-PER I-PER` as one entity and strict IOB2 as none; a wrong tag for the
    /// scheme and sentences of other lengths are errors.
    @Test func lenientAndStrictDiffer() throws {
        let truth = [["B-PER", "I-PER", "O"]], predicted = [["I-PER", "I-PER", "O"]]
        let lenient = try EntityMetrics.scores(truth: truth, predicted: predicted)
        #expect(lenient["overall_f1"] == 1)
        let strict = try EntityMetrics.scores(truth: truth, predicted: predicted, mode: .strict(.iob2))
        #expect(strict["overall_f1"] == 0 && strict["overall_recall"] == 0 && strict["PER_number"] == 1)
        #expect(lenient["overall_accuracy"] == 2.0 / 3)
        #expect(throws: TrainingError.self) { try EntityMetrics.scores(truth: [["S-PER"]], predicted: [["O"]], mode: .strict(.iob2)) }
        #expect(throws: TrainingError.self) { try EntityMetrics.scores(truth: [["O", "O"]], predicted: [["O"]]) }
    }
}
