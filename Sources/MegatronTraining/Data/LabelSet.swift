/// The labels of a classification task and how each example's label becomes the loss's target: the problem type
/// (transformers' `problem_type`) read from the labels — a list is multi-label, a number that is not an integer is
/// regression, anything else a class — and the class names in sorted order (numerically when they are integers)
/// unless `--labels` gives them.
///
/// ```swift
/// let labels = try LabelSet(training: examples, given: nil)
/// labels.names    // ["negative", "positive"]  (id2label)
/// try labels.targets(examples[0])  // [1]
/// ```
public struct LabelSet: Sendable, Equatable {
    public let problem: Loss
    /// id2label: class i is `names[i]` (regression: one "LABEL_0").
    public let names: [String]

    public init(training examples: [LabeledText], given: [String]? = nil) throws {
        let lists = examples.contains { if case .names = $0.label { true } else { false } }
        let numbers = examples.contains { if case .number = $0.label { true } else { false } }
        if lists {
            if let bad = examples.first(where: { if case .names = $0.label { false } else { true } }) {
                throw TrainingError("\(bad.location): a single label where the other examples have lists (multi-label): write it as a list")
            }
            problem = .binaryCrossEntropy
            let all = Set(examples.flatMap { example -> [String] in if case .names(let list) = example.label { return list } else { return [] } })
            names = try given.map { try Self.checked($0) } ?? Self.sorted(all)
        } else if numbers {
            problem = .meanSquaredError
            for example in examples {
                if case .name(let name) = example.label, Double(name) == nil {
                    throw TrainingError("\(example.location): the label \"\(name)\" is not a number, and other labels are (regression)")
                }
            }
            names = ["LABEL_0"]
        } else {
            problem = .crossEntropy
            let all = Set(examples.compactMap { if case .name(let name) = $0.label { name } else { nil } })
            names = try given.map { try Self.checked($0) } ?? Self.sorted(all)
        }
        if problem != .meanSquaredError && names.count < 2 {
            throw TrainingError("the training data have one class only (\(names.first ?? "")): a classifier needs at least two")
        }
        for example in examples { _ = try targets(example) }  // every label known
    }

    /// NER's labels: every tag of the training sentences, sorted as run_ner sorts them, unless `given` names them.
    public init(tagged sentences: [TaggedSentence], given: [String]? = nil) throws {
        problem = .crossEntropy
        names = try given.map { try Self.checked($0) } ?? Set(sentences.flatMap(\.tags)).sorted()
        guard names.count >= 2 else {
            throw TrainingError("the training sentences have one tag only (\(names.first ?? "")): a tagger needs at least two")
        }
        for sentence in sentences {
            for tag in sentence.tags where !names.contains(tag) { throw unknown(tag, at: sentence.location) }
        }
    }

    /// Question answering's "labels": `qa_outputs`' two outputs (start, end), named as transformers names them in a new
    /// config's `id2label`.
    public static let answerSpans = LabelSet(problem: .crossEntropy, names: ["LABEL_0", "LABEL_1"])

    /// The masked-LM heads' "labels": none of their own (a new config's default `id2label`).
    public static let languageModel = LabelSet(problem: .crossEntropy, names: ["LABEL_0", "LABEL_1"])

    /// Multiple choice's "labels": the classifier's one score per choice.
    public static let choices = LabelSet(problem: .crossEntropy, names: ["LABEL_0"])

    init(problem: Loss, names: [String]) {
        self.problem = problem
        self.names = names
    }

    /// The loss's target for one example: the class index, the value, or one 0/1 per class.
    public func targets(_ example: LabeledText) throws -> [Double] {
        switch (problem, example.label) {
        case (.crossEntropy, .name(let name)):
            guard let index = names.firstIndex(of: name) else { throw unknown(name, at: example.location) }
            return [Double(index)]
        case (.meanSquaredError, .number(let value)):
            return [value]
        case (.meanSquaredError, .name(let name)):
            guard let value = Double(name) else { throw TrainingError("\(example.location): the label \"\(name)\" is not a number (regression)") }
            return [value]
        case (.binaryCrossEntropy, .names(let list)):
            var row = [Double](repeating: 0, count: names.count)
            for name in list {
                guard let index = names.firstIndex(of: name) else { throw unknown(name, at: example.location) }
                row[index] = 1
            }
            return row
        default:
            throw TrainingError("\(example.location): a label of another kind than the training data's (\(problem.rawValue))")
        }
    }

    func unknown(_ name: String, at location: String) -> TrainingError {
        TrainingError("\(location): unknown label \"\(name)\" (the labels are \(names.joined(separator: ", ")))")
    }

    static func sorted(_ names: Set<String>) -> [String] {
        names.allSatisfy { Int($0) != nil } ? names.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) } : names.sorted()
    }

    static func checked(_ given: [String]) throws -> [String] {
        guard Set(given).count == given.count else { throw TrainingError("--labels names a label twice: \(given.joined(separator: ","))") }
        return given
    }
}
