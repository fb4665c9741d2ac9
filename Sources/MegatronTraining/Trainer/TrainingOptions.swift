/// How to fine-tune: the Hugging Face Trainer's settings and defaults (learning rate 5e-5, linear schedule without
/// warmup, no weight decay, AdamW β (0.9, 0.999) and ε 1e-8, clipping at 1.0, batch size 8, 3 epochs), so that a
/// user's numbers carry over.
public struct TrainingOptions: Sendable, Equatable, Codable {
    public var learningRate = 5e-5
    public var epochs = 3.0
    /// Optimizer steps in all; overrides `epochs` when set.
    public var maxSteps: Int?
    public var batchSize = 8
    public var gradientAccumulation = 1
    public var warmupRatio = 0.0
    public var weightDecay = 0.0
    public var maxGradNorm = 1.0
    public var schedule = Schedule.Kind.linear
    public var seed: UInt64 = 42
    /// Tokens per example, the longer text cut first (nil: the model's limit).
    public var maxLength: Int?
    /// Evaluate every this many optimizer steps (nil: at the end of each epoch).
    public var evalEvery: Int?
    /// The metric that picks the best model: "loss" (lower is better) or "accuracy", "f1", "matthews_correlation",
    /// "pearson", "spearman" (higher is better).
    public var metric = "loss"
    /// NER: every token of a word carries its label (a `B-` label as its `I-` on the word's later tokens), not only
    /// the first (run_ner's `--label_all_tokens`).
    public var labelAllTokens: Bool {
        get { labelsEveryToken ?? false }
        set { labelsEveryToken = newValue ? true : nil }
    }
    /// `labelAllTokens` as stored: optional, so that checkpoints written before it existed still read (as off).
    var labelsEveryToken: Bool?
    /// NER: a sentence over `maxLength` tokens becomes overlapping windows sharing this many tokens, every word
    /// labelled (nil: cut at `maxLength`, the words after it unlabelled, as run_ner does).
    public var wordStride: Int?
    /// NER: evaluate in seqeval's strict mode for this scheme (nil: its default mode).
    public var strictScheme: TagScheme?
    /// QA: tokens shared by neighbouring windows of a long context (run_qa's `--doc_stride`, 128).
    public var docStride: Int {
        get { windowStride ?? 128 }
        set { windowStride = newValue }
    }
    /// QA: the most tokens an evaluated answer may span (run_qa's `--max_answer_length`, 30).
    public var maxAnswerLength: Int {
        get { answerTokens ?? 30 }
        set { answerTokens = newValue }
    }
    /// QA with unanswerable questions (SQuAD v2.0): evaluation predicts no answer ("") when log p(no answer) −
    /// log p(best span) is over this (run_qa's `--null_score_diff_threshold`, 0).
    public var nullScoreDiffThreshold: Double {
        get { nullThreshold ?? 0 }
        set { nullThreshold = newValue }
    }
    /// QA: questions may have no answer (SQuAD v2.0; run_qa's `--version_2_with_negative`), and evaluation may predict
    /// none.
    public var versionTwoWithNegative: Bool {
        get { negatives ?? false }
        set { negatives = newValue }
    }
    /// Masked LM: the fraction of tokens each batch predicts (run_mlm's `--mlm_probability`, 0.15).
    public var mlmProbability: Double {
        get { maskingProbability ?? 0.15 }
        set { maskingProbability = newValue }
    }
    /// Masked LM: whole words masked rather than tokens (`DataCollatorForWholeWordMask`).
    public var wholeWordMask: Bool {
        get { wholeWords ?? false }
        set { wholeWords = newValue }
    }
    // The QA and masked-LM settings as stored: optional, so that checkpoints written before them still read.
    var windowStride: Int?, answerTokens: Int?, nullThreshold: Double?, negatives: Bool?, maskingProbability: Double?, wholeWords: Bool?
    /// Stop after this many evaluations without improvement (nil: never).
    public var earlyStopping: Int?
    /// Train only the top this many encoder layers and the head (0: the head only; nil: everything).
    public var trainLayers: Int?
    /// Write a checkpoint to resume from (`OUTPUT/checkpoint-STEP`) every this many optimizer steps (nil: only when
    /// interrupted).
    public var saveEvery: Int?
    /// How many checkpoints to keep (the newest).
    public var saveTotalLimit = 1
    /// Recompute each layer's activations in the backward pass instead of keeping them (less memory, more time; the
    /// same bits).
    public var gradientCheckpointing = false

    public init() {}

    /// Checks the options, each error naming its flag.
    public func validate() throws {
        guard learningRate > 0, learningRate.isFinite else { throw TrainingError("--learning-rate must be positive") }
        guard epochs > 0 || maxSteps != nil else { throw TrainingError("--epochs must be positive (or give --max-steps)") }
        if let maxSteps, maxSteps < 1 { throw TrainingError("--max-steps must be at least 1") }
        guard batchSize >= 1 else { throw TrainingError("--batch-size must be at least 1") }
        guard gradientAccumulation >= 1 else { throw TrainingError("--gradient-accumulation must be at least 1") }
        guard (0..<1).contains(warmupRatio) else { throw TrainingError("--warmup-ratio must be from 0 up to (not including) 1") }
        guard weightDecay >= 0 else { throw TrainingError("--weight-decay must not be negative") }
        guard maxGradNorm > 0 else { throw TrainingError("--max-grad-norm must be positive") }
        if let maxLength, maxLength < 2 { throw TrainingError("--max-length must be at least 2 ([CLS] and [SEP])") }
        if let evalEvery, evalEvery < 1 { throw TrainingError("--eval-every must be at least 1") }
        if let earlyStopping, earlyStopping < 1 { throw TrainingError("--early-stopping must be at least 1") }
        if let trainLayers, trainLayers < 0 { throw TrainingError("--train-layers must not be negative (0: the head only)") }
        if let saveEvery, saveEvery < 1 { throw TrainingError("--save-every must be at least 1") }
        guard saveTotalLimit >= 1 else { throw TrainingError("--save-total-limit must be at least 1") }
        guard docStride >= 0 else { throw TrainingError("--doc-stride must not be negative") }
        if let wordStride, wordStride < 0 { throw TrainingError("--stride must not be negative") }
        guard maxAnswerLength >= 1 else { throw TrainingError("--max-answer-length must be at least 1") }
        guard mlmProbability > 0 && mlmProbability < 1 else { throw TrainingError("--mlm-probability must be between 0 and 1") }
        guard nullScoreDiffThreshold.isFinite else { throw TrainingError("--null-score-diff-threshold must be a finite number") }
        guard ["loss", "accuracy", "f1", "precision", "recall", "exact", "matthews_correlation", "pearson", "spearman", "mse", "perplexity", "next_sentence_accuracy"].contains(metric) else {
            throw TrainingError("--metric \(metric) is not one of loss, accuracy, f1, precision, recall (NER), exact (QA), matthews_correlation, pearson, spearman, mse, perplexity, next_sentence_accuracy (MLM)")
        }
    }

    /// The options that decide the weights, by flag: a resumed run must have the same (evaluation, early stopping
    /// and saving may change).
    func trajectory(precision: String) -> [(flag: String, value: String)] {
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "(none)" }
        return [("--learning-rate", "\(learningRate)"), ("--epochs", "\(epochs)"), ("--max-steps", text(maxSteps)),
                ("--batch-size", "\(batchSize)"), ("--gradient-accumulation", "\(gradientAccumulation)"),
                ("--warmup-ratio", "\(warmupRatio)"), ("--weight-decay", "\(weightDecay)"), ("--max-grad-norm", "\(maxGradNorm)"),
                ("--scheduler", schedule.rawValue), ("--seed", "\(seed)"), ("--max-length", text(maxLength)),
                ("--train-layers", text(trainLayers)), ("--bf16", precision == "bf16" ? "on" : "off"),
                ("--label-all-tokens", labelAllTokens ? "on" : "off"), ("--doc-stride", text(windowStride)), ("--stride", text(wordStride)),
                ("--mlm-probability", text(maskingProbability)), ("--whole-word-mask", wholeWordMask ? "on" : "off")]
    }

    /// Whether a larger value of `metric` is better.
    var higherIsBetter: Bool { !["loss", "mse", "perplexity"].contains(metric) }
}
