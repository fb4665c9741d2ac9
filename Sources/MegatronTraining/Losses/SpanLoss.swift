import Foundation
import MegatronBackend

/// Extractive QA's loss as transformers' `…ForQuestionAnswering` computes it: cross-entropy of the start logits over
/// each sequence's positions against the start token, the same for the end, and their mean. Positions are clamped to
/// 0...S and S is ignored (an answer outside the sequence); each cross-entropy is the mean over its counted sequences.
public enum SpanLoss {
    /// The loss of logits (B·S, 2) — each token's start and end logit, B sequences of S tokens — against `starts` and
    /// `ends` (B each), and ∂loss/∂logits (B·S, 2). Sums in Double.
    /// - Throws: when the targets do not fit the logits, or every start (or end) is ignored.
    public static func evaluate(_ logits: Tensor, starts: [Int], ends: [Int]) throws -> (loss: Double, gradient: Tensor) {
        let b = starts.count
        guard b > 0, ends.count == b, logits.shape.count == 2, logits.shape[1] == 2, logits.shape[0] % b == 0 else {
            throw TrainingError("\(starts.count) start and \(ends.count) end positions for logits of shape \(logits.shape)")
        }
        let s = logits.shape[0] / b
        let gradient = Tensor(shape: logits.shape)
        var total = 0.0
        for (column, positions) in [starts, ends].enumerated() {
            let clamped = positions.map { min(max($0, 0), s) }
            let counted = clamped.filter { $0 != s }.count
            guard counted > 0 else {
                throw TrainingError("every \(column == 0 ? "start" : "end") position of the batch is outside its \(s) tokens: nothing to learn from")
            }
            var sum = 0.0
            for row in 0..<b where clamped[row] != s {
                let values = (0..<s).map { Double(logits.data[(row * s + $0) * 2 + column]) }
                let top = values.max() ?? 0
                let partition = values.reduce(0) { $0 + exp($1 - top) }
                sum += -(values[clamped[row]] - top - log(partition))
                for position in 0..<s {
                    let p = exp(values[position] - top) / partition
                    gradient.data[(row * s + position) * 2 + column] = Float(0.5 * (p - (position == clamped[row] ? 1 : 0)) / Double(counted))
                }
            }
            total += 0.5 * sum / Double(counted)
        }
        return (total, gradient)
    }
}
