import Foundation
import Testing
@testable import MegatronTraining

@Suite struct DataTests {
    /// The metrics on cases worked out by hand (as scikit-learn and scipy define them).
    @Test func metricsMatchTheirDefinitions() {
        let binary = ClassificationMetrics.classes(predicted: [0, 1, 1, 0, 1], truth: [0, 1, 0, 0, 1], classes: 2)
        #expect(binary["accuracy"] == 0.8 && abs((binary["f1"] ?? 0) - 0.8) < 1e-12)
        #expect(abs((binary["matthews_correlation"] ?? 0) - 2.0 / 3.0) < 1e-12)
        let macro = ClassificationMetrics.classes(predicted: [0, 1, 2, 2], truth: [0, 2, 2, 1], classes: 3)
        #expect(abs((macro["f1"] ?? 0) - 0.5) < 1e-12)
        let regression = ClassificationMetrics.regression(predicted: [1, 2, 2, 3], truth: [1, 3, 2, 4])
        #expect(abs((regression["spearman"] ?? 0) - 4.5 / 22.5.squareRoot()) < 1e-12)
        #expect(abs((regression["pearson"] ?? 0) - 0.9486832980505138) < 1e-12)
    }

    /// CSV as RFC 4180 writes it: quoted separators, doubled quotes, line breaks inside quotes (the line numbers
    /// still those of the file).
    @Test func csvRowsAreRFC4180() throws {
        let rows = try LabeledTexts.rows("text,label\n\"a, \"\"b\"\"\nc\",x\nd,y\n", separator: ",", path: "t.csv")
        #expect(rows.map(\.fields) == [["text", "label"], ["a, \"b\"\nc", "x"], ["d", "y"]])
        #expect(rows.map(\.line) == [1, 2, 4])
        #expect(throws: TrainingError.self) { try LabeledTexts.rows("a\n\"open", separator: ",", path: "t.csv") }
    }

    /// Labels: sorted classes (numerically for integers), regression for non-integer numbers, multi-label for lists.
    @Test func labelsAndProblemTypes() throws {
        func example(_ label: LabeledText.Label) -> LabeledText { LabeledText(text: "t", pair: nil, label: label, location: "f:1") }
        let numeric = try LabelSet(training: [example(.name("10")), example(.name("2")), example(.name("1"))])
        #expect(numeric.names == ["1", "2", "10"] && numeric.problem == .crossEntropy)
        let regression = try LabelSet(training: [example(.number(0.5)), example(.name("2"))])
        let two = try regression.targets(example(.name("2")))
        #expect(regression.problem == .meanSquaredError && two == [2])
        let multi = try LabelSet(training: [example(.names(["b", "a"])), example(.names(["c"]))])
        #expect(multi.problem == .binaryCrossEntropy && multi.names == ["a", "b", "c"])
        #expect(try multi.targets(example(.names(["c", "a"]))) == [1, 0, 1])
        let given = try LabelSet(training: [example(.name("pos")), example(.name("neg"))], given: ["pos", "neg"])
        #expect(given.names == ["pos", "neg"])
        #expect(throws: TrainingError.self) { try LabelSet(training: [example(.name("pos"))]) }
        #expect(throws: TrainingError.self) { try LabelSet(training: [example(.name("a")), example(.name("b"))], given: ["a"]) }
    }
}
