import Foundation

/// The evaluation metrics of sequence classification, as scikit-learn and scipy compute them: accuracy, F1 (binary:
/// of the positive class, index 1; more classes: the macro mean over the classes in the labels or the predictions),
/// Matthews correlation (its multiclass form); regression: Pearson's and Spearman's correlations (ranks averaged over
/// ties). Multi-label: accuracy over every (item, class) at the 0.5 threshold, and micro F1.
public enum ClassificationMetrics {
    /// Single-label metrics of predicted against true class indices.
    public static func classes(predicted: [Int], truth: [Int], classes: Int) -> [String: Double] {
        let n = Double(max(truth.count, 1))
        let accuracy = Double(zip(predicted, truth).filter { $0 == $1 }.count) / n
        var f1s: [Double] = []
        let present = Set(predicted + truth)
        for c in 0..<classes where classes == 2 ? c == 1 : present.contains(c) {
            let tp = Double(zip(predicted, truth).filter { $0 == c && $1 == c }.count)
            let fp = Double(zip(predicted, truth).filter { $0 == c && $1 != c }.count)
            let fn = Double(zip(predicted, truth).filter { $0 != c && $1 == c }.count)
            f1s.append(tp == 0 ? 0 : 2 * tp / (2 * tp + fp + fn))
        }
        // Matthews: (c·s − Σ p_k t_k) / √((s² − Σ p_k²)(s² − Σ t_k²)), 0 when undefined.
        let s = Double(truth.count), correct = Double(zip(predicted, truth).filter { $0 == $1 }.count)
        var pt = 0.0, pp = 0.0, tt = 0.0
        for c in 0..<classes {
            let p = Double(predicted.filter { $0 == c }.count), t = Double(truth.filter { $0 == c }.count)
            pt += p * t
            pp += p * p
            tt += t * t
        }
        let denominator = ((s * s - pp) * (s * s - tt)).squareRoot()
        return ["accuracy": accuracy, "f1": f1s.isEmpty ? 0 : f1s.reduce(0, +) / Double(f1s.count),
                "matthews_correlation": denominator == 0 ? 0 : (correct * s - pt) / denominator]
    }

    /// Regression metrics.
    public static func regression(predicted: [Double], truth: [Double]) -> [String: Double] {
        ["pearson": pearson(predicted, truth), "spearman": pearson(ranks(predicted), ranks(truth)),
         "mse": zip(predicted, truth).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Double(max(truth.count, 1))]
    }

    /// Multi-label metrics: logits thresholded at 0 (probability 0.5).
    public static func multiLabel(predicted: [[Bool]], truth: [[Bool]]) -> [String: Double] {
        let pairs = zip(predicted.joined(), truth.joined())
        let total = Double(max(pairs.underestimatedCount, predicted.joined().count, 1))
        let tp = Double(pairs.filter { $0 && $1 }.count), fp = Double(pairs.filter { $0 && !$1 }.count)
        let fn = Double(pairs.filter { !$0 && $1 }.count)
        return ["accuracy": Double(pairs.filter { $0 == $1 }.count) / total, "f1": tp == 0 ? 0 : 2 * tp / (2 * tp + fp + fn)]
    }

    static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        let n = Double(x.count)
        guard n > 1 else { return 0 }
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        return sxx == 0 || syy == 0 ? 0 : sxy / (sxx * syy).squareRoot()
    }

    /// Ranks from 1, ties given their average rank (scipy's rankdata).
    static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = rank }
            i = j + 1
        }
        return ranks
    }
}
