import Foundation
import MegatronBackend

/// The losses of transformers' `problem_type`, each with its gradient with respect to the logits.
public enum Loss: String, Sendable, CaseIterable {
    /// `single_label_classification`: cross-entropy over the labels, targets with -100 ignored, the mean over the
    /// targets counted.
    case crossEntropy = "single_label_classification"
    /// `regression` (num_labels == 1): the mean squared error.
    case meanSquaredError = "regression"
    /// `multi_label_classification`: binary cross-entropy with logits, the mean over every (item, label).
    case binaryCrossEntropy = "multi_label_classification"

    /// The loss of logits (N, C) against targets — class indices (N) as Doubles for cross-entropy, values (N · C)
    /// for the others — and ∂loss/∂logits (N, C). Sums in Double.
    /// - Throws: when no target is counted (every one -100) or the targets do not fit the logits.
    public func evaluate(_ logits: Tensor, targets: [Double]) throws -> (loss: Double, gradient: Tensor) {
        let n = logits.shape[0], c = logits.count / max(n, 1)
        let gradient = Tensor(shape: logits.shape)
        var total = 0.0
        switch self {
        case .crossEntropy:
            guard targets.count == n else { throw TrainingError("\(targets.count) labels for \(n) items") }
            let counted = targets.filter { $0 != -100 }.count
            guard counted > 0 else { throw TrainingError("every label of the batch is -100 (ignored): nothing to learn from") }
            for i in 0..<n where targets[i] != -100 {
                let label = Int(targets[i])
                guard (0..<c).contains(label) else { throw TrainingError("label \(label) is outside 0..<\(c)") }
                let row = (0..<c).map { Double(logits.data[i * c + $0]) }
                let top = row.max() ?? 0
                let sum = row.reduce(0) { $0 + exp($1 - top) }
                total += -(row[label] - top - log(sum))
                for j in 0..<c {
                    gradient.data[i * c + j] = Float((exp(row[j] - top) / sum - (j == label ? 1 : 0)) / Double(counted))
                }
            }
            return (total / Double(counted), gradient)
        case .meanSquaredError, .binaryCrossEntropy:
            guard targets.count == n * c else { throw TrainingError("\(targets.count) targets for \(n) x \(c) logits") }
            let count = Double(n * c)
            for i in 0..<(n * c) {
                let x = Double(logits.data[i]), y = targets[i]
                if self == .meanSquaredError {
                    total += (x - y) * (x - y)
                    gradient.data[i] = Float(2 * (x - y) / count)
                } else {
                    // log(1 + e^-|x|) + max(x, 0) − x y: stable for every x.
                    total += max(x, 0) - x * y + log1p(exp(-abs(x)))
                    gradient.data[i] = Float((1 / (1 + exp(-x)) - y) / count)
                }
            }
            return (total / count, gradient)
        }
    }
}

extension Loss {
    /// Multiple choice's loss, as `…ForMultipleChoice` computes it: the choices' scores (B·C, 1), C per example, seen
    /// as (B, C), and cross-entropy against each example's right choice (`labels`, B); ∂loss/∂scores (B·C, 1).
    public static func choices(_ scores: Tensor, labels: [Double]) throws -> (loss: Double, gradient: Tensor) {
        guard !labels.isEmpty, scores.count % labels.count == 0 else {
            throw TrainingError("\(labels.count) labels for \(scores.count) choice scores")
        }
        let shape = scores.shape
        defer { _ = scores.reshape(shape) }
        let (loss, gradient) = try crossEntropy.evaluate(scores.reshape([labels.count, scores.count / labels.count]), targets: labels)
        return (loss, gradient.reshape(shape))
    }
}

/// Training cannot go on: what was wrong, and what to do.
public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
