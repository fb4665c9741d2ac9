import ArgumentParser
import Foundation
import MegatronBERT
import BERTTokenizer
#if canImport(Glibc)
import Glibc
#endif

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune the model for a task on the CPU, into a Hugging Face directory that classify, serve and transformers load.",
        subcommands: [FinetuneClassifyCommand.self]
    )
}

struct FinetuneClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Fine-tune a sequence classifier (single-label, multi-label or regression) on labelled texts.",
        discussion: """
        The whole encoder is trained with AdamW as the Hugging Face Trainer trains it, with its defaults: learning \
        rate 5e-5, linear schedule, no warmup, no weight decay, clipping at 1.0, batch size 8, 3 epochs; dropout as \
        config.json says. Data: JSON Lines ({"text", "text_pair", "label"}), CSV or TSV with a header; a label is a \
        class (string or integer), a number (regression) or a list of classes (multi-label); the classes are the \
        training data's in sorted order unless --labels names them. A checkpoint without a classifier (NVIDIA's \
        pre-trained model) gets a new one; --new-head replaces one that has other labels. With --eval, every epoch \
        (or --eval-every steps) is evaluated — loss, accuracy, F1, Matthews correlation; regression: Pearson and \
        Spearman — each a line of OUTPUT/metrics.jsonl, and OUTPUT holds the best model by --metric; without, the \
        last. Ctrl-C ends the run after the current optimizer step with a checkpoint (OUTPUT/checkpoint-STEP, also \
        written every --save-every steps); the same command with --resume goes on from it to the same weights, bit \
        for bit, as a run never stopped. --train-layers N trains only the top N layers and the head; --gradient-checkpointing \
        recomputes activations instead of keeping them; --bf16 multiplies in BF16 where the CPU has \
        BF16 dot products.

        Examples:
          megatron-bert finetune classify --model ./megatron-bert-cased-345m --train train.jsonl --eval dev.jsonl --output ./sentiment
          megatron-bert finetune classify --model M --train train.csv --text-column sentence --label-column label --epochs 5 --output out
          megatron-bert finetune classify --model M --train train.jsonl --output out --save-every 500 --resume
        """
    )

    @Option(help: "The model to start from: a Hugging Face directory, or a Megatron-LM .pt / NGC .zip.")
    var model: String

    @Option(help: "Training data: .jsonl, .csv or .tsv.")
    var train: String

    @Option(help: "Evaluation data, the same format (optional).")
    var eval: String?

    @Option(help: "Where to write the model and metrics.jsonl (a new or empty directory, or one this command wrote).")
    var output: String

    @Option(help: "Epochs (fractions allowed).") var epochs: Double = 3
    @Option(help: "Optimizer steps in all (overrides --epochs).") var maxSteps: Int?
    @Option(help: "The peak learning rate.") var learningRate: Double = 5e-5
    @Option(help: "Examples per forward pass.") var batchSize: Int = 8
    @Option(help: "Batches per optimizer step.") var gradientAccumulation: Int = 1
    @Option(help: "The fraction of the steps the learning rate warms up over.") var warmupRatio: Double = 0
    @Option(help: "AdamW's decoupled weight decay (not on biases and LayerNorm weights).") var weightDecay: Double = 0
    @Option(help: "Clip the gradients' global norm to this.") var maxGradNorm: Double = 1
    @Option(help: "linear, cosine or constant (after the warmup).") var scheduler: String = "linear"
    @Option(help: "Tokens per example, the longer text cut first (default: the model's limit).") var maxLength: Int?
    @Option(help: "Seed of the shuffling, dropout and a new head.") var seed: UInt64 = 42
    @Option(help: "Evaluate every N optimizer steps (default: every epoch).") var evalEvery: Int?
    @Option(help: "The metric that picks the best model: loss, accuracy, f1, matthews_correlation, pearson, spearman.") var metric: String = "loss"
    @Option(help: "Stop after N evaluations without improvement.") var earlyStopping: Int?
    @Option(help: "Write a checkpoint to resume from (OUTPUT/checkpoint-STEP) every N optimizer steps (default: only on Ctrl-C).") var saveEvery: Int?
    @Option(help: "How many checkpoints to keep (the newest).") var saveTotalLimit: Int = 1
    @Flag(help: "Go on from the newest checkpoint in --output (give the same options and data).") var resume = false
    @Flag(help: "Multiply in BF16 (operands rounded to BF16, sums and master weights FP32, as torch.autocast(bfloat16)) where the CPU has BF16 dot products (AVX512_BF16 or AMX); FP32 by default.") var bf16 = false
    @Flag(help: "Recompute each layer's activations in the backward pass instead of keeping them: less memory for long sequences and large batches, about a third more time, the same result.") var gradientCheckpointing = false
    @Option(help: "Train only the top N encoder layers and the head; 0 trains the head (pooler and classifier) only (default: everything).") var trainLayers: Int?
    @Option(help: "The labels in order (comma-separated; default: the training data's, sorted).") var labels: String?
    @Option(help: "The text column.") var textColumn: String = "text"
    @Option(help: "The pair column (read when present).") var pairColumn: String = "text_pair"
    @Option(help: "The label column.") var labelColumn: String = "label"
    @Option(help: "A vocab.txt for models without one.") var vocab: String?
    @Flag(help: "Replace the checkpoint's classifier with a new one.") var newHead = false
    @Flag(help: "Say nothing on standard error but errors.") var quiet = false

    func run() throws {
        try reportingErrors {
            var options = TrainingOptions()
            guard let kind = Schedule.Kind(rawValue: scheduler) else {
                throw CommandError("--scheduler \(scheduler) is not one of linear, cosine, constant")
            }
            (options.learningRate, options.epochs, options.maxSteps, options.batchSize) = (learningRate, epochs, maxSteps, batchSize)
            (options.gradientAccumulation, options.warmupRatio, options.weightDecay, options.maxGradNorm) = (gradientAccumulation, warmupRatio, weightDecay, maxGradNorm)
            (options.schedule, options.maxLength, options.seed, options.evalEvery) = (kind, maxLength, seed, evalEvery)
            (options.metric, options.earlyStopping) = (metric, earlyStopping)
            (options.saveEvery, options.saveTotalLimit, options.trainLayers) = (saveEvery, saveTotalLimit, trainLayers)
            options.gradientCheckpointing = gradientCheckpointing
            try options.validate()
            guard URL(fileURLWithPath: output).standardizedFileURL.resolvingSymlinksInPath()
                    != URL(fileURLWithPath: model).standardizedFileURL.resolvingSymlinksInPath() else {
                throw CommandError("--output is the --model directory itself: write the fine-tuned model into another directory")
            }
            let columns = LabeledTexts.Columns(text: textColumn, pair: pairColumn, label: labelColumn)
            let training = try LabeledTexts.read(train, columns: columns)
            let evaluation = try eval.map { try LabeledTexts.read($0, columns: columns) }
            let labelSet = try LabelSet(training: training, given: labels.map { $0.split(separator: ",").map(String.init) })
            let source = try ModelSource.open(model)
            let tokenizer = try BERTTokenizer(directory: source.tokenizerDirectory, vocabularyFile: vocab ?? Settings.current[.vocab])
            var config = source.config
            config.numLabels = labelSet.problem == .meanSquaredError ? 1 : labelSet.names.count
            let hasHead = source.tensors["classifier.weight"] != nil
            if !hasHead && !quiet { note("\(model) has no classifier: a new one is trained for \(config.numLabels) label(s)") }
            let products: any MatrixProducts = bf16 ? try BF16MatrixProducts() : CPUMatrixProducts()
            let network = try TrainableModel(config: config, tensors: source.tensors, products: products,
                                             newHead: newHead || !hasHead, seed: seed)
            let trainer = try ClassificationTrainer(model: network, tokenizer: tokenizer, labels: labelSet, options: options)
            let bar = ProgressBar(total: nil, unit: "steps", quiet: quiet)
            let quiet = self.quiet
            trainer.warn = { if !quiet { note("warning: " + $0) } }
            trainer.progress = { report in
                if let metrics = report.evaluation {
                    bar.finish()
                    if !quiet {
                        note("step \(report.step)/\(report.totalSteps): " + metrics.sorted { $0.key < $1.key }
                            .map { "eval_\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", "))
                    }
                } else {
                    bar.detail = String(format: "of %d, epoch %d, loss %.4f, lr %.2e", report.totalSteps, report.epoch + 1, report.loss, report.learningRate)
                    bar.advance(by: 1)
                }
            }
            if !quiet {
                note("fine-tuning \(config.architecture.rawValue) (\(network.parameters.values.reduce(0) { $0 + $1.count }) parameters) on \(training.count) examples, \(labelSet.problem.rawValue), labels: \(labelSet.names.joined(separator: ", "))")
            }
            let interrupt = Interrupt()
            trainer.shouldStop = { interrupt.requested }
            let summary = try trainer.run(train: training, eval: evaluation, output: output, tokenizerDirectory: source.tokenizerDirectory,
                                          resume: resume)
            bar.finish()
            if summary.interrupted {
                note("stopped at step \(summary.steps); the checkpoint \(summary.checkpoint ?? output) holds the run: the same command with --resume goes on")
                throw ExitCode(130)
            }
            if !quiet {
                let best = summary.best.map { " best: " + $0.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", ") } ?? ""
                note("done: \(summary.steps) steps, training loss \(String(format: "%.4f", summary.trainingLoss))\(summary.stoppedEarly ? " (stopped early)" : "");\(best); model in \(output)")
            }
        }
    }
}

/// Ctrl-C during a fine-tune: the first asks the run to stop after its current optimizer step (with a checkpoint); a
/// second ends the process at once (the previous checkpoint stays whole).
final class Interrupt: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private let source: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            let seen = self.lock.withLock { () -> Int in
                self.count += 1
                return self.count
            }
            if seen == 1 {
                note("\nstopping after this step and writing a checkpoint (Ctrl-C again to quit at once)")
            } else {
                _exit(130)
            }
        }
        source.resume()
    }

    var requested: Bool { lock.withLock { count > 0 } }

    deinit {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
