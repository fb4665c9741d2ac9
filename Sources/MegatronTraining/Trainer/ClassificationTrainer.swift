import Foundation
import BERTTokenizer
import MegatronBackend
import MegatronModel

/// Fine-tunes a sequence classifier as the Hugging Face Trainer does: batches in a seeded shuffled order each epoch,
/// padded to their longest; AdamW with its groups, a schedule with warmup, global-norm clipping, gradient accumulation;
/// evaluation (loss and the metrics of `ClassificationMetrics`) every epoch or every N steps, each a line of
/// `metrics.jsonl` in the output directory; the best model by `metric` (or the last, without evaluation data) written
/// there as a Hugging Face directory; early stopping.
///
/// ```swift
/// let trainer = try ClassificationTrainer(model: model, tokenizer: tokenizer, labels: labels, options: TrainingOptions())
/// let summary = try trainer.run(train: examples, eval: held, output: "./my-classifier", tokenizerDirectory: dir)
/// print(summary.best ?? [:])
/// ```
public final class ClassificationTrainer {
    public let model: TrainableModel
    public let tokenizer: BERTTokenizer
    public let labels: LabelSet
    public let options: TrainingOptions
    /// Tokens per example.
    public let maxLength: Int
    /// Called after each optimizer step and evaluation (a progress bar).
    public var progress: (TrainingProgress) -> Void = { _ in }
    /// Called with each warning (examples cut to `maxLength`).
    public var warn: (String) -> Void = { _ in }

    public init(model: TrainableModel, tokenizer: BERTTokenizer, labels: LabelSet, options: TrainingOptions) throws {
        try options.validate()
        self.model = model
        self.tokenizer = tokenizer
        self.labels = labels
        self.options = options
        maxLength = min(options.maxLength ?? model.config.maxPositionEmbeddings, model.config.maxPositionEmbeddings)
    }

    /// One example ready for the model.
    struct Prepared {
        var encoding: Encoding
        var targets: [Double]
    }

    func prepare(_ examples: [LabeledText]) throws -> [Prepared] {
        var cut = 0
        let prepared = try examples.map { example -> Prepared in
            let (encoding, truncated) = try tokenizer.encodeTruncating(example.text, pair: example.pair, maxLength: maxLength)
            if truncated { cut += 1 }
            return Prepared(encoding: encoding, targets: try labels.targets(example))
        }
        if cut > 0 { warn("\(cut) of \(examples.count) examples are longer than \(maxLength) tokens and were cut to them (--max-length)") }
        return prepared
    }

    /// The examples `indices` padded to their longest: ids, types, mask (B, S) and the targets, flattened.
    func batch(_ examples: [Prepared], _ indices: ArraySlice<Int>) -> (ids: [[Int]], types: [[Int]], mask: [[Int]], targets: [Double]) {
        let longest = indices.map { examples[$0].encoding.count }.max() ?? 0
        var ids: [[Int]] = [], types: [[Int]] = [], mask: [[Int]] = [], targets: [Double] = []
        for i in indices {
            let e = examples[i].encoding, padding = longest - e.count
            ids.append(e.ids + [Int](repeating: tokenizer.padTokenID, count: padding))
            types.append(e.typeIDs + [Int](repeating: 0, count: padding))
            mask.append([Int](repeating: 1, count: e.count) + [Int](repeating: 0, count: padding))
            targets += examples[i].targets
        }
        return (ids, types, mask, targets)
    }

    /// What a run ended with.
    public struct Summary {
        public var steps: Int
        public var trainingLoss: Double
        /// The best evaluation's metrics (nil without evaluation data).
        public var best: [String: Double]?
        public var stoppedEarly: Bool
    }

    /// Trains on `train`, evaluating on `eval` when given, and writes the model (the best by `metric`, or the last)
    /// and `metrics.jsonl` into `output`.
    /// - Throws: `TrainingError` for data the labels do not fit, a loss that becomes NaN or infinite (naming the step),
    ///   an output directory that holds other files.
    public func run(train: [LabeledText], eval: [LabeledText]?, output: String, tokenizerDirectory: String?) throws -> Summary {
        let examples = try prepare(train), held = try eval.map(prepare)
        let microBatches = (examples.count + options.batchSize - 1) / options.batchSize
        let stepsPerEpoch = max(1, microBatches / options.gradientAccumulation)
        let totalSteps = options.maxSteps ?? max(1, Int((Double(stepsPerEpoch) * options.epochs).rounded(.up)))
        let schedule = Schedule(options.schedule, peak: options.learningRate,
                                warmupSteps: Int((Double(totalSteps) * options.warmupRatio).rounded(.up)), totalSteps: totalSteps)
        var optimizer = AdamW(weightDecay: options.weightDecay)
        var random = SeededRandom(seed: options.seed)
        var order = Array(examples.indices)
        var step = 0, micro = 0, epoch = 0, lossSum = 0.0, lossCount = 0, totalLoss = 0.0, totalCount = 0
        var metricsLines: [String] = [], best: [String: Double]?, sinceBest = 0, stoppedEarly = false
        let parameters = model.parameterList
        model.zeroGradients()
        func save() throws {
            try model.write(to: output, labels: labels.names, problemType: labels.problem, tokenizerDirectory: tokenizerDirectory,
                            metrics: metricsLines)
        }
        func evaluate() throws {
            var line: [String: Any] = ["step": step, "epoch": Double(step) / Double(stepsPerEpoch),
                                       "learning_rate": schedule.rate(at: max(0, step - 1)),
                                       "loss": lossCount == 0 ? 0 : lossSum / Double(lossCount)]
            var improved = held == nil
            if let held {
                let metrics = try evaluation(held)
                for (name, value) in metrics { line["eval_" + name] = value }
                let value = metrics[options.metric] ?? metrics["loss"] ?? 0
                let previous = best?[options.metric] ?? best?["loss"]
                improved = previous.map { options.higherIsBetter ? value > $0 : value < $0 } ?? true
                if improved {
                    best = metrics
                    sinceBest = 0
                } else {
                    sinceBest += 1
                }
                progress(TrainingProgress(step: step, totalSteps: totalSteps, epoch: epoch, loss: line["loss"] as? Double ?? 0,
                                          learningRate: schedule.rate(at: max(0, step - 1)), evaluation: metrics))
            }
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            metricsLines.append(String(decoding: data, as: UTF8.self))
            (lossSum, lossCount) = (0, 0)  // "loss": the mean since the last line, as the Trainer logs it
            if improved { try save() } else { try appendMetrics(metricsLines.last ?? "", to: output) }
        }
        training: while step < totalSteps {
            // Each epoch a new order (Fisher–Yates from the seeded generator).
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(random.next() % UInt64(i + 1))) }
            var start = 0
            while start < order.count {
                let indices = order[start..<min(start + options.batchSize, order.count)]
                start += options.batchSize
                let batch = batch(examples, indices)
                let (loss, _) = try model.step(ids: batch.ids, types: batch.types, mask: batch.mask, targets: batch.targets,
                                               loss: labels.problem, lossScale: 1 / Double(options.gradientAccumulation), random: &random)
                guard loss.isFinite else {
                    throw TrainingError("the loss became \(loss) at step \(step + 1) (epoch \(epoch + 1)): lower the learning rate (--learning-rate \(options.learningRate / 10)) or add warmup (--warmup-ratio 0.1)")
                }
                lossSum += loss
                lossCount += 1
                totalLoss += loss
                totalCount += 1
                micro += 1
                guard micro % options.gradientAccumulation == 0 else { continue }
                clipGradients(parameters, maxNorm: options.maxGradNorm)
                optimizer.step(parameters, learningRate: schedule.rate(at: step))
                model.zeroGradients()
                step += 1
                progress(TrainingProgress(step: step, totalSteps: totalSteps, epoch: epoch, loss: totalLoss / Double(totalCount),
                                          learningRate: schedule.rate(at: step - 1), evaluation: nil))
                if let every = options.evalEvery, step % every == 0 {
                    try evaluate()
                    if let patience = options.earlyStopping, sinceBest >= patience { stoppedEarly = true; break training }
                }
                if step >= totalSteps { break }
            }
            epoch += 1
            micro = 0  // a partial accumulation at an epoch's end is dropped, as the Trainer's dataloader length gives
            model.zeroGradients()
            if options.evalEvery == nil {
                try evaluate()
                if let patience = options.earlyStopping, sinceBest >= patience { stoppedEarly = true; break training }
            }
        }
        if options.evalEvery != nil && step % (options.evalEvery ?? 1) != 0 && !stoppedEarly { try evaluate() }
        return Summary(steps: step, trainingLoss: totalCount == 0 ? 0 : totalLoss / Double(totalCount), best: best, stoppedEarly: stoppedEarly)
    }

    /// Loss and metrics on held-out examples, dropout off, in batches of `batchSize`.
    public func evaluation(_ examples: [LabeledText]) throws -> [String: Double] { try evaluation(try prepare(examples)) }

    func evaluation(_ examples: [Prepared]) throws -> [String: Double] {
        var random = SeededRandom(seed: 0)
        var lossSum = 0.0, counted = 0.0
        var predicted: [Int] = [], truth: [Int] = [], values: [Double] = [], targets: [Double] = []
        var predictedSets: [[Bool]] = [], truthSets: [[Bool]] = []
        var start = 0
        while start < examples.count {
            let indices = Array(examples.indices)[start..<min(start + options.batchSize, examples.count)]
            start += options.batchSize
            let batch = batch(examples, indices)
            let logits = try model.logits(ids: batch.ids, types: batch.types, mask: batch.mask, random: &random)
            let (loss, _) = try labels.problem.evaluate(logits, targets: batch.targets)
            let c = labels.problem == .meanSquaredError ? 1 : labels.names.count
            lossSum += loss * Double(indices.count)
            counted += Double(indices.count)
            for (row, i) in indices.enumerated() {
                let scores = (0..<c).map { logits[row * c + $0] }
                switch labels.problem {
                case .crossEntropy:
                    predicted.append(scores.indices.max { scores[$0] < scores[$1] } ?? 0)
                    truth.append(Int(examples[i].targets[0]))
                case .meanSquaredError:
                    values.append(Double(scores[0]))
                    targets.append(examples[i].targets[0])
                case .binaryCrossEntropy:
                    predictedSets.append(scores.map { $0 > 0 })
                    truthSets.append(examples[i].targets.map { $0 == 1 })
                }
            }
        }
        var metrics: [String: Double]
        switch labels.problem {
        case .crossEntropy: metrics = ClassificationMetrics.classes(predicted: predicted, truth: truth, classes: labels.names.count)
        case .meanSquaredError: metrics = ClassificationMetrics.regression(predicted: values, truth: targets)
        case .binaryCrossEntropy: metrics = ClassificationMetrics.multiLabel(predicted: predictedSets, truth: truthSets)
        }
        metrics["loss"] = lossSum / max(counted, 1)
        return metrics
    }

    func appendMetrics(_ line: String, to output: String) throws {
        let path = (output as NSString).appendingPathComponent("metrics.jsonl")
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError("cannot append to \(path)")
        }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((line + "\n").utf8))
    }
}

/// Where a run is, for a progress bar.
public struct TrainingProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var epoch: Int
    /// The mean training loss so far.
    public var loss: Double
    public var learningRate: Double
    /// An evaluation's metrics, when this report is one.
    public var evaluation: [String: Double]?
}
