import Foundation
import BERTTokenizer
import MegatronBackend
import MegatronModel
import TensorFiles

/// Fine-tunes a sequence classifier — or a token classifier (NER), as transformers' `run_ner` does, when the model's
/// head is `.tokenClassification` — as the Hugging Face Trainer does: batches in a seeded shuffled order each epoch,
/// padded to their longest; AdamW with its groups, a schedule with warmup, global-norm clipping, gradient accumulation;
/// evaluation (loss and the metrics of `ClassificationMetrics`) every epoch or every N steps, each a line of
/// `metrics.jsonl` in the output directory; the best model by `metric` (or the last, without evaluation data) written
/// there as a Hugging Face directory; early stopping.
///
/// ```swift
/// let trainer = try ClassificationTrainer(model: model, tokenizer: tokenizer, labels: labels, options: TrainingOptions())
/// let summary = try trainer.run(train: examples, eval: held, output: "./my-classifier", tokenizerDirectory: dir)
/// print(summary.best ?? [:])
/// // NER: a token-classification model, tagged sentences.
/// let tagger = try ClassificationTrainer(model: tokenModel, tokenizer: tokenizer, labels: try LabelSet(tagged: sentences),
///                                        options: options)
/// _ = try tagger.run(tagged: sentences, eval: dev, output: "./my-ner", tokenizerDirectory: dir)
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
    /// Masked LM: which tokens each batch predicts (set by `run(texts:)`).
    var masking: MaskedLMMasking?

    public init(model: TrainableModel, tokenizer: BERTTokenizer, labels: LabelSet, options: TrainingOptions) throws {
        try options.validate()
        self.model = model
        self.tokenizer = tokenizer
        self.labels = labels
        self.options = options
        maxLength = min(options.maxLength ?? model.config.maxPositionEmbeddings, model.config.maxPositionEmbeddings)
    }

    /// One example ready for the model: one sequence, or a multiple-choice example's C sequences (one per choice).
    struct Prepared {
        var encodings: [Encoding]
        var targets: [Double]
        var encoding: Encoding { encodings[0] }
        /// NER windows (`options.wordStride`): the sentence this window belongs to, and where its tokens start among
        /// the sentence's (after [CLS]).
        var sentence: Int?
        var start = 0

        init(encoding: Encoding, targets: [Double]) {
            encodings = [encoding]
            self.targets = targets
        }

        init(choices: [Encoding], targets: [Double]) {
            encodings = choices
            self.targets = targets
        }
    }

    /// Tagged sentences as run_ner prepares them: the words tokenized (`encodeWords`), each word's label on its first
    /// token (every token's with `options.labelAllTokens`), -100 elsewhere. With `options.wordStride`, a sentence over
    /// `maxLength` becomes overlapping windows (`encodeWordWindows`), each labelled as the whole sentence is (a word's
    /// first token in the sentence, not a window's first token inside a word).
    func prepare(tagged sentences: [TaggedSentence]) throws -> [Prepared] {
        var cutSentences = 0, cutWords = 0
        let inside = TokenAlignment.insideLabels(labels.names)
        func indices(_ sentence: TaggedSentence) throws -> [Int] {
            try sentence.tags.map { tag in
                guard let index = labels.names.firstIndex(of: tag) else { throw labels.unknown(tag, at: sentence.location) }
                return index
            }
        }
        if let stride = options.wordStride {
            return try sentences.enumerated().flatMap { number, sentence -> [Prepared] in
                let labelIndices = try indices(sentence)
                let whole = try tokenizer.encodeWords(sentence.words).encoding
                let targets = TokenAlignment.targets(wordIDs: whole.wordIDs, labels: labelIndices, labelAllTokens: options.labelAllTokens,
                                                     inside: inside)
                let windows: [(encoding: Encoding, start: Int)]
                do {
                    windows = try tokenizer.encodeWordWindows(sentence.words, maxLength: maxLength, stride: stride)
                } catch let error as TokenizerError {
                    throw TrainingError("--stride \(stride) with --max-length \(maxLength): \(error.message)")
                }
                return windows.map { window, start in
                    var prepared = Prepared(encoding: window, targets: [-100] + targets[(start + 1)..<(start + window.count - 1)] + [-100])
                    (prepared.sentence, prepared.start) = (number, start)
                    return prepared
                }
            }
        }
        let prepared = try sentences.map { sentence -> Prepared in
            let (encoding, truncated) = try tokenizer.encodeWords(sentence.words, maxLength: maxLength)
            let labelIndices = try indices(sentence)
            if truncated {
                cutSentences += 1
                cutWords += sentence.words.count - 1 - (encoding.wordIDs.compactMap { $0 }.max() ?? -1)  // the words after the last kept
            }
            return Prepared(encoding: encoding, targets: TokenAlignment.targets(wordIDs: encoding.wordIDs, labels: labelIndices,
                                                                                labelAllTokens: options.labelAllTokens, inside: inside))
        }
        if cutSentences > 0 {
            warn("\(cutSentences) of \(sentences.count) sentences are longer than \(maxLength) tokens: \(cutWords) words past --max-length go unlabelled (raise --max-length, or --stride N for windows)")
        }
        return prepared
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

    /// The examples `indices` padded to their longest: ids, types, mask (B, S) — (B·C, S) for multiple choice, each
    /// example's choices in a row — and the targets, flattened (for tokens, each example's padded with -100 to the
    /// longest).
    func batch(_ examples: [Prepared], _ indices: ArraySlice<Int>) -> (ids: [[Int]], types: [[Int]], mask: [[Int]], targets: [Double]) {
        let longest = indices.flatMap { examples[$0].encodings.map(\.count) }.max() ?? 0
        var ids: [[Int]] = [], types: [[Int]] = [], mask: [[Int]] = [], targets: [Double] = []
        for i in indices {
            for e in examples[i].encodings {
                let padding = longest - e.count
                ids.append(e.ids + [Int](repeating: tokenizer.padTokenID, count: padding))
                types.append(e.typeIDs + [Int](repeating: 0, count: padding))
                mask.append([Int](repeating: 1, count: e.count) + [Int](repeating: 0, count: padding))
                if model.head == .tokenClassification { targets += examples[i].targets + [Double](repeating: -100, count: padding) }
            }
            if model.head != .tokenClassification { targets += examples[i].targets }
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
        /// Whether `shouldStop` ended the run before its last step (a checkpoint was written to resume from).
        public var interrupted: Bool
        /// The newest checkpoint written, if any.
        public var checkpoint: String?
    }

    /// Asked after each optimizer step; true ends the run there with a checkpoint (Ctrl-C).
    public var shouldStop: () -> Bool = { false }

    /// Trains on `train`, evaluating on `eval` when given, and writes the model (the best by `metric`, or the last)
    /// and `metrics.jsonl` into `output`, with a checkpoint every `saveEvery` steps and when `shouldStop` says so.
    /// With `resume`, goes on from the newest checkpoint in `output`, to the same weights, bit for bit, as a run never
    /// stopped (the options that decide the weights, the labels and the training data must be the same).
    /// - Throws: `TrainingError` for data the labels do not fit, a loss that becomes NaN or infinite (naming the step),
    ///   an output directory that holds other files (or an earlier run's, without `resume`), a checkpoint that does not
    ///   fit this run.
    public func run(train: [LabeledText], eval: [LabeledText]?, output: String, tokenizerDirectory: String?,
                    resume: Bool = false) throws -> Summary {
        guard model.head == .sequenceClassification else { throw TrainingError("labelled texts train a sequence classifier; this model classifies tokens") }
        let held = try eval.map(prepare)
        let metrics: Set<String> = switch labels.problem {
        case .crossEntropy: ["loss", "accuracy", "f1", "matthews_correlation"]
        case .meanSquaredError: ["loss", "pearson", "spearman", "mse"]
        case .binaryCrossEntropy: ["loss", "accuracy", "f1"]
        }
        return try run(examples: try prepare(train), evaluate: held.map { held in { try self.evaluation(held) } }, metrics: metrics,
                       output: output, tokenizerDirectory: tokenizerDirectory, resume: resume)
    }

    /// `run` for NER: a token classifier trained on tagged sentences, evaluated (with `eval`) with seqeval's entity
    /// precision, recall and F1 (`precision`, `recall`, `f1`, per type `PER_f1` …) and token `accuracy`.
    public func run(tagged train: [TaggedSentence], eval: [TaggedSentence]?, output: String, tokenizerDirectory: String?,
                    resume: Bool = false) throws -> Summary {
        guard model.head == .tokenClassification else { throw TrainingError("tagged sentences train a token classifier; this model classifies sequences") }
        let held = try eval.map { try prepare(tagged: $0) }
        return try run(examples: try prepare(tagged: train), evaluate: held.map { held in { try self.evaluation(held) } },
                       metrics: ["loss", "precision", "recall", "f1", "accuracy"], output: output, tokenizerDirectory: tokenizerDirectory,
                       resume: resume)
    }

    /// The loop every task shares: `examples` trained on, `evaluate` (the held-out data's loss and metrics) called at
    /// each evaluation; `metrics` the names it reports that `options.metric` may choose (checked before training).
    func run(examples: [Prepared], evaluate evaluateHeld: (() throws -> [String: Double])?, metrics: Set<String>, output: String,
             tokenizerDirectory: String?, resume: Bool) throws -> Summary {
        if evaluateHeld != nil && !metrics.contains(options.metric) {
            throw TrainingError("--metric \(options.metric) is not one this task reports: choose one of \(metrics.sorted().joined(separator: ", "))")
        }
        let directory = try RunDirectory(output)
        let microBatches = (examples.count + options.batchSize - 1) / options.batchSize
        let stepsPerEpoch = max(1, microBatches / options.gradientAccumulation)
        let totalSteps = options.maxSteps ?? max(1, Int((Double(stepsPerEpoch) * options.epochs).rounded(.up)))
        let schedule = Schedule(options.schedule, peak: options.learningRate,
                                warmupSteps: Int((Double(totalSteps) * options.warmupRatio).rounded(.up)), totalSteps: totalSteps)
        model.trainedLayers = options.trainLayers
        model.recomputeActivations = options.gradientCheckpointing
        var optimizer = AdamW(weightDecay: options.weightDecay)
        var state = TrainingState(order: Array(examples.indices), random: options.seed)
        let dataHash = Self.hash(examples)
        if resume {
            (state, optimizer) = try self.resume(from: directory, examples: examples.count, dataHash: dataHash, optimizer: optimizer)
            try directory.writeMetrics(state.metricsLines)  // evaluations after the checkpoint are made again
        } else if directory.holdsARun {
            throw TrainingError("\(output) holds an earlier run's model or checkpoints: add --resume to go on with it, or write into a new or empty directory")
        }
        var random = SeededRandom(seed: state.random)
        var stoppedEarly = false, interrupted = false, checkpoint: String?
        let parameters = model.trainableParameters
        model.zeroGradients()
        func saveModel() throws {
            try directory.placeModel { staging in
                try model.writeFiles(into: staging, labels: labels.names, problemType: labels.problem,
                                     tokenizerDirectory: tokenizerDirectory, metrics: state.metricsLines)
            }
        }
        func saveCheckpoint() throws {
            state.random = random.state
            let manifest = CheckpointManifest(state: state, options: options, labels: labels.names, problemType: labels.problem.rawValue,
                                              examples: examples.count, dataHash: dataHash, optimizerSteps: optimizer.steps,
                                              precision: model.products.precision)
            checkpoint = try directory.writeCheckpoint(step: state.step, keep: options.saveTotalLimit) { staging in
                try model.writeCheckpoint(into: staging, manifest: manifest, optimizer: optimizer, labels: labels.names,
                                          problemType: labels.problem, tokenizerDirectory: tokenizerDirectory)
            }.path
        }
        func evaluate() throws {
            var line: [String: Any] = ["step": state.step, "epoch": Double(state.step) / Double(stepsPerEpoch),
                                       "learning_rate": schedule.rate(at: max(0, state.step - 1)),
                                       "loss": state.lossCount == 0 ? 0 : state.lossSum / Double(state.lossCount)]
            var improved = evaluateHeld == nil
            if let evaluateHeld {
                let metrics = try evaluateHeld()
                for (name, value) in metrics { line["eval_" + name] = value }
                let value = metrics[options.metric] ?? metrics["loss"] ?? 0
                let previous = state.best?[options.metric] ?? state.best?["loss"]
                improved = previous.map { options.higherIsBetter ? value > $0 : value < $0 } ?? true
                if improved {
                    state.best = metrics
                    state.sinceBest = 0
                } else {
                    state.sinceBest += 1
                }
                progress(TrainingProgress(step: state.step, totalSteps: totalSteps, epoch: state.epoch, loss: line["loss"] as? Double ?? 0,
                                          learningRate: schedule.rate(at: max(0, state.step - 1)), evaluation: metrics))
            }
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            state.metricsLines.append(String(decoding: data, as: UTF8.self))
            (state.lossSum, state.lossCount) = (0, 0)  // "loss": the mean since the last line, as the Trainer logs it
            if improved { try saveModel() } else { try directory.writeMetrics(state.metricsLines) }
        }
        var patienceOver: Bool { options.earlyStopping.map { state.sinceBest >= $0 } ?? false }
        training: while state.step < totalSteps {
            if state.position == 0 {  // each epoch a new order (Fisher–Yates from the seeded generator)
                for i in stride(from: state.order.count - 1, to: 0, by: -1) {
                    state.order.swapAt(i, Int(random.next() % UInt64(i + 1)))
                }
            }
            while state.position < state.order.count {
                let indices = state.order[state.position..<min(state.position + options.batchSize, state.order.count)]
                state.position += options.batchSize
                var batch = batch(examples, indices), positions: [Int]?
                let sentenceLabels = batch.targets  // sentence pairs' next-sentence labels (B); masking gives the tokens' targets
                if let masking { (batch, positions) = masked(batch, examples, indices, masking, &random) }
                let (loss, _) = try model.step(ids: batch.ids, types: batch.types, mask: batch.mask, positions: positions,
                                               lossScale: 1 / Double(options.gradientAccumulation), random: &random,
                                               objective: objective(batch.targets, nextSentence: sentenceLabels))
                guard loss.isFinite else {
                    throw TrainingError("the loss became \(loss) at step \(state.step + 1) (epoch \(state.epoch + 1)): lower the learning rate (--learning-rate \(options.learningRate / 10)) or add warmup (--warmup-ratio 0.1)")
                }
                state.lossSum += loss
                state.lossCount += 1
                state.totalLoss += loss
                state.totalCount += 1
                state.micro += 1
                guard state.micro % options.gradientAccumulation == 0 else { continue }
                optimizer.clippedStep(parameters, learningRate: schedule.rate(at: state.step), maxNorm: options.maxGradNorm)
                state.step += 1
                progress(TrainingProgress(step: state.step, totalSteps: totalSteps, epoch: state.epoch,
                                          loss: state.totalLoss / Double(state.totalCount),
                                          learningRate: schedule.rate(at: state.step - 1), evaluation: nil))
                if let every = options.evalEvery, state.step % every == 0 {
                    try evaluate()
                    if patienceOver { stoppedEarly = true; break training }
                }
                if state.step >= totalSteps { break training }
                if shouldStop() {
                    interrupted = true
                    try saveCheckpoint()
                    break training
                }
                if let every = options.saveEvery, state.step % every == 0 { try saveCheckpoint() }
            }
            state.epoch += 1
            state.position = 0
            state.micro = 0  // a partial accumulation at an epoch's end is dropped, as the Trainer's dataloader length gives
            model.zeroGradients()
            if options.evalEvery == nil {
                try evaluate()
                if patienceOver { stoppedEarly = true; break training }
            }
        }
        if !interrupted && !stoppedEarly {
            if options.evalEvery == nil ? state.position != 0 : state.step % (options.evalEvery ?? 1) != 0 { try evaluate() }
        }
        return Summary(steps: state.step, trainingLoss: state.totalCount == 0 ? 0 : state.totalLoss / Double(state.totalCount),
                       best: state.best, stoppedEarly: stoppedEarly, interrupted: interrupted, checkpoint: checkpoint)
    }

    /// The loss of a batch's logits against its targets: the labels' problem type; for multiple choice, cross-entropy
    /// over each example's C choice logits (B·C, 1) seen as (B, C); for question answering the start and end positions
    /// (`targets` holding each example's pair).
    func objective(_ targets: [Double]) -> (Tensor) throws -> (loss: Double, gradient: Tensor) {
        if model.head == .multipleChoice { return { try Loss.choices($0, labels: targets) } }
        if model.predictions != nil {  // the logits are the masked tokens' rows only, in order
            let kept = targets.filter { $0 != -100 }
            return { try Loss.crossEntropy.evaluate($0, targets: kept) }
        }
        guard model.head == .questionAnswering else { return { [labels] in try labels.problem.evaluate($0, targets: targets) } }
        let starts = stride(from: 0, to: targets.count, by: 2).map { Int(targets[$0]) }
        let ends = stride(from: 1, to: targets.count, by: 2).map { Int(targets[$0]) }
        return { try SpanLoss.evaluate($0, starts: starts, ends: ends) }
    }

    /// `objective` for the step with two outputs: with the next-sentence head training (sentence pairs), the masked
    /// tokens' loss plus the next-sentence cross-entropy over `nextSentence` (each pair's label), as
    /// `BertForPreTraining` sums them; else the one loss.
    func objective(_ targets: [Double], nextSentence labels: [Double]) -> (Tensor, Tensor?) throws -> (loss: Double, gradient: Tensor, nextSentence: Tensor?) {
        let single = objective(targets)
        guard model.head == .preTraining && model.trainsNextSentence else {
            return { logits, _ in let (loss, gradient) = try single(logits); return (loss, gradient, nil) }
        }
        return { logits, nextSentenceLogits in
            guard let nextSentenceLogits else { throw TrainingError("next-sentence prediction needs the pre-training head's next-sentence logits") }
            let (masked, gradient) = try single(logits)
            let (nextSentence, nextSentenceGradient) = try Loss.crossEntropy.evaluate(nextSentenceLogits, targets: labels)
            return (masked + nextSentence, gradient, nextSentenceGradient)
        }
    }

    /// The state, weights and optimizer of the newest checkpoint in `directory`, checked against this run.
    func resume(from directory: RunDirectory, examples: Int, dataHash: UInt64, optimizer: AdamW) throws -> (TrainingState, AdamW) {
        guard let newest = directory.checkpoints.last else {
            throw TrainingError("--resume: \(directory.path) has no checkpoint (one is written every --save-every steps, and when Ctrl-C stops a run)")
        }
        let manifest: CheckpointManifest
        do {
            manifest = try JSONDecoder().decode(CheckpointManifest.self,
                                                from: Data(contentsOf: newest.url.appendingPathComponent("trainer_state.json")))
        } catch {
            throw TrainingError("--resume: \(newest.url.path)/trainer_state.json cannot be read: \(error)")
        }
        guard manifest.format == CheckpointManifest.currentFormat else {
            throw TrainingError("--resume: \(newest.url.path) has checkpoint format \(manifest.format); this build reads \(CheckpointManifest.currentFormat)")
        }
        let changed = zip(manifest.options.trajectory(precision: manifest.precision ?? "fp32"),
                          options.trajectory(precision: model.products.precision)).filter { $0.value != $1.value }
        guard changed.isEmpty else {
            throw TrainingError("--resume: the checkpoint was trained with " + changed.map { "\($0.0.flag) \($0.0.value)" }.joined(separator: ", ")
                                + ", this run asks " + changed.map { "\($0.1.flag) \($0.1.value)" }.joined(separator: ", ")
                                + ": give the same options to resume (or write into a new directory)")
        }
        guard manifest.labels == labels.names, manifest.problemType == labels.problem.rawValue else {
            throw TrainingError("--resume: the checkpoint's labels are \(manifest.labels.joined(separator: ", ")) (\(manifest.problemType)); these data give \(labels.names.joined(separator: ", ")) (\(labels.problem.rawValue))")
        }
        guard manifest.examples == examples, manifest.dataHash == dataHash else {
            throw TrainingError("--resume: the training data are not those the checkpoint was trained on (\(manifest.examples) examples then, \(examples) now, or other texts or labels): resume with the same --train file")
        }
        guard manifest.state.order.count == examples, Set(manifest.state.order) == Set(0..<examples) else {
            throw TrainingError("--resume: \(newest.url.path)/trainer_state.json is damaged (its example order is not a permutation)")
        }
        let weights = try SafeTensorsFile(path: newest.url.appendingPathComponent("model.safetensors").path)
        try model.restore(from: weights.tensors)
        let moments = try SafeTensorsFile(path: newest.url.appendingPathComponent("optimizer.safetensors").path)
        var optimizer = optimizer
        try optimizer.restore(steps: manifest.optimizerSteps, tensors: moments.tensors, parameters: model.trainableParameters)
        return (manifest.state, optimizer)
    }

    /// The training data's fingerprint: every example's tokens, token types and targets, in order.
    static func hash(_ examples: [Prepared]) -> UInt64 {
        var hash = DataHash()
        for example in examples {
            for encoding in example.encodings {
                hash.add(UInt64(encoding.count))
                for id in encoding.ids { hash.add(UInt64(bitPattern: Int64(id))) }
                for type in encoding.typeIDs { hash.add(UInt64(bitPattern: Int64(type))) }
            }
            for target in example.targets { hash.add(target.bitPattern) }
        }
        return hash.value
    }

    /// Loss and metrics on held-out examples, dropout off, in batches of `batchSize`.
    public func evaluation(_ examples: [LabeledText]) throws -> [String: Double] { try evaluation(try prepare(examples)) }

    /// Loss and seqeval's metrics on held-out tagged sentences, dropout off.
    public func evaluation(tagged sentences: [TaggedSentence]) throws -> [String: Double] { try evaluation(try prepare(tagged: sentences)) }

    /// `body` with each batch of `batchSize` examples in order — their indices, the padded batch and the logits,
    /// dropout off — for evaluation. With `masking` (masked LM), each batch masked from `options.seed`'s generator
    /// (the same masks at every evaluation), the logits those of the masked tokens.
    func evaluationBatches(_ examples: [Prepared], masking: MaskedLMMasking? = nil,
                           _ body: (Range<Int>, (ids: [[Int]], types: [[Int]], mask: [[Int]], targets: [Double]), Tensor) throws -> Void) throws {
        try evaluationBatches(examples, masking: masking) { indices, batch, logits, _, _ in try body(indices, batch, logits) }
    }

    /// `evaluationBatches` that also gives each batch's next-sentence logits (B, 2) and labels (B) (the pre-training
    /// head's, nil for others).
    func evaluationBatches(_ examples: [Prepared], masking: MaskedLMMasking?,
                           _ body: (Range<Int>, (ids: [[Int]], types: [[Int]], mask: [[Int]], targets: [Double]), Tensor, Tensor?, [Double]) throws -> Void) throws {
        var random = SeededRandom(seed: 0), masks = SeededRandom(seed: options.seed)
        for start in stride(from: 0, to: examples.count, by: options.batchSize) {
            let indices = start..<min(start + options.batchSize, examples.count)
            var batch = batch(examples, ArraySlice(indices)), positions: [Int]?
            let sentenceLabels = batch.targets
            if let masking { (batch, positions) = masked(batch, examples, ArraySlice(indices), masking, &masks) }
            let (logits, state) = try model.forward(ids: batch.ids, types: batch.types, mask: batch.mask, positions: positions,
                                                    training: false, random: &random)
            try body(indices, batch, logits, state.nextSentenceLogits, sentenceLabels)
        }
    }

    func evaluation(_ examples: [Prepared]) throws -> [String: Double] {
        if model.head == .tokenClassification { return try tokenEvaluation(examples) }
        var lossSum = 0.0, counted = 0.0
        var predicted: [Int] = [], truth: [Int] = [], values: [Double] = [], targets: [Double] = []
        var predictedSets: [[Bool]] = [], truthSets: [[Bool]] = []
        try evaluationBatches(examples) { indices, batch, logits in
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
}

extension ClassificationTrainer {
    /// run_ner's evaluation: per sentence, the tokens whose target is not -100 (each word's first token, or every
    /// labelled token with `labelAllTokens`), predicted label by arg max against the true one, scored by seqeval
    /// (`options.strictScheme`: strict mode in that scheme, else its default mode); the loss the mean over batches'
    /// token means weighted by sentences, as the Trainer's evaluation loop averages.
    func tokenEvaluation(_ examples: [Prepared]) throws -> [String: Double] {
        var lossSum = 0.0, counted = 0.0
        // Per sentence, each labelled token's (true, predicted) label by its place in the sentence; of a token in several
        // windows, the window where it has the most context (the most tokens on its nearer side) speaks for it.
        var tokens: [Int: [Int: (context: Int, truth: Int, predicted: Int)]] = [:]
        let c = labels.names.count
        try evaluationBatches(examples) { indices, batch, logits in
            let s = batch.ids.first?.count ?? 0
            if batch.targets.contains(where: { $0 != -100 }) {
                let (loss, _) = try Loss.crossEntropy.evaluate(logits, targets: batch.targets)
                lossSum += loss * Double(indices.count)
                counted += Double(indices.count)
            }
            for (row, i) in indices.enumerated() {
                let n = examples[i].encoding.count, sentence = examples[i].sentence ?? i
                for position in 0..<s where batch.targets[row * s + position] != -100 {
                    let base = (row * s + position) * c
                    let scores = (0..<c).map { logits[base + $0] }
                    let vote = (context: min(position - 1, n - 2 - position), truth: Int(batch.targets[row * s + position]),
                                predicted: scores.indices.max { scores[$0] < scores[$1] } ?? 0)
                    let place = examples[i].start + position
                    if let seen = tokens[sentence]?[place], seen.context >= vote.context { continue }
                    tokens[sentence, default: [:]][place] = vote
                }
            }
        }
        let sentences = Set(examples.indices.map { examples[$0].sentence ?? $0 }).sorted()
        let ordered = sentences.map { (tokens[$0] ?? [:]).sorted { $0.key < $1.key }.map(\.value) }
        let truth = ordered.map { $0.map { labels.names[$0.truth] } }, predicted = ordered.map { $0.map { labels.names[$0.predicted] } }
        let scores = try EntityMetrics.scores(truth: truth, predicted: predicted, mode: options.strictScheme.map { .strict($0) } ?? .lenient)
        var metrics: [String: Double] = [:]
        for (key, value) in scores {
            metrics[key.hasPrefix("overall_") ? String(key.dropFirst("overall_".count)) : key] = value
        }
        metrics["loss"] = lossSum / max(counted, 1)
        return metrics
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
