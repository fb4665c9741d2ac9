import BERTTokenizer
import Foundation

/// A label and its score, as Hugging Face's text-classification pipeline reports them.
public struct LabelScore: Sendable, Equatable, Codable {
    public var label: String
    public var score: Double
}

/// How logits become scores.
public enum ScoreFunction: String, Sendable, CaseIterable {
    case softmax, sigmoid, none

    /// transformers' choice: `regression` → none; `multi_label_classification` or one label → sigmoid; else softmax.
    public init(problemType: String?, numLabels: Int) {
        switch problemType {
        case "regression": self = .none
        case "multi_label_classification": self = .sigmoid
        default: self = numLabels == 1 ? .sigmoid : .softmax
        }
    }

    func apply(_ logits: UnsafePointer<Float>, count n: Int) -> [Double] {
        switch self {
        case .softmax: return MegatronModel.softmax(logits, count: n)
        case .sigmoid: return (0..<n).map { 1 / (1 + exp(-Double(logits[$0]))) }
        case .none: return (0..<n).map { Double(logits[$0]) }
        }
    }
}

/// Text classification (sequence classification head): one row per text or pair, truncated to the model's limit.
public struct ClassificationTask: ModelTask {
    public let pipeline: Pipeline
    /// Labels per input, best first (nil: all).
    public let topK: Int?
    public let function: ScoreFunction
    /// Which end of an input over the model's limit is cut (the longer text of a pair).
    public var side: TruncationSide = .right
    /// Whether such an input is cut (true) or refused with a `badInput` error.
    public var truncate = true
    public var work: RowWork { .head }

    /// - Parameter function: softmax, sigmoid or none; nil chooses from config.json's `problem_type`.
    public init(pipeline: Pipeline, topK: Int? = 1, function: ScoreFunction? = nil) throws {
        try pipeline.require(.classify)
        if let topK, topK < 1 { throw ModelError("top-k must be at least 1 (got \(topK))") }
        self.pipeline = pipeline
        self.topK = topK
        let config = pipeline.model.config
        self.function = function ?? ScoreFunction(problemType: config.problemType, numLabels: config.numLabels)
    }

    /// One row per text or pair, within the model's limit (cut on `side`, or refused when `truncate` is false).
    public func prepare(_ inputs: [TextInput]) throws -> (rows: [ModelRow], plan: Int) {
        (try inputs.map { ModelRow(try pipeline.encodeTruncating($0.text, pair: $0.textPair, side: side, truncate: truncate)) }, inputs.count)
    }

    /// Per input, the labels best first.
    public func finish(_ outputs: [RowOutput], plan: Int) throws -> [[LabelScore]] {
        try outputs.map { output in
            guard case .sequenceClassification(let logits)? = output.head else { throw missingOutput("class logits", task: "classification") }
            let n = logits.count
            let scores = logits.withUnsafeBufferPointer { function.apply($0.baseAddress!, count: n) }
            let ranked = topIndices(scores, among: Array(0..<n), k: min(topK ?? n, n))
            return ranked.map { LabelScore(label: pipeline.label($0), score: scores[$0]) }
        }
    }
}

extension Pipeline {
    /// The label of class `i`: config.json's `id2label`, else `LABEL_i`.
    func label(_ i: Int) -> String { model.config.id2label[i] ?? "LABEL_\(i)" }

    /// Classifies texts (or pairs) with a sequence-classification head; per input, the labels best first,
    /// `topK` of them (nil: all).
    ///
    /// ```swift
    /// let labels = try pipeline.classify([("A great movie.", nil)], topK: 1)[0]
    /// print(labels[0].label, labels[0].score)
    /// ```
    /// - Parameter function: softmax, sigmoid or none; nil chooses from config.json's `problem_type`.
    public func classify(_ inputs: [(text: String, pair: String?)], topK: Int? = 1,
                         function: ScoreFunction? = nil) throws -> [[LabelScore]] {
        try run(try ClassificationTask(pipeline: self, topK: topK, function: function),
                inputs.map { TextInput(text: $0.text, textPair: $0.pair) })
    }
}
