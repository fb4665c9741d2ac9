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
        abstract: "Fine-tune the model for a task on the CPU, or go on pre-training it on a domain's text, into a Hugging Face directory that our tasks, serve and transformers load.",
        subcommands: [FinetuneClassifyCommand.self, FinetuneNERCommand.self, FinetuneQACommand.self, FinetuneMultipleChoiceCommand.self,
                      FinetuneMLMCommand.self]
    )
}

/// The options every `finetune` task takes: the model, the data files, the output, and the Trainer's settings.
struct FinetuneOptions: ParsableArguments {
    @Option(help: "The model to start from: a Hugging Face directory, or a Megatron-LM .pt / NGC .zip.")
    var model: String

    @Option(help: "Training data (see the formats above).")
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
    @Option(help: "Tokens per example, cut on the right (default: the model's limit).") var maxLength: Int?
    @Option(help: "Seed of the shuffling, dropout and a new head.") var seed: UInt64 = 42
    @Option(help: "Evaluate every N optimizer steps (default: every epoch).") var evalEvery: Int?
    @Option(help: "The metric that picks the best model: loss; accuracy, f1, matthews_correlation, pearson, spearman (classify); precision, recall, f1, accuracy (ner); exact, f1 (qa); accuracy (multiple-choice); perplexity, next_sentence_accuracy (mlm).") var metric: String = "loss"
    @Option(help: "Stop after N evaluations without improvement.") var earlyStopping: Int?
    @Option(help: "Write a checkpoint to resume from (OUTPUT/checkpoint-STEP) every N optimizer steps (default: only on Ctrl-C).") var saveEvery: Int?
    @Option(help: "How many checkpoints to keep (the newest).") var saveTotalLimit: Int = 1
    @Flag(help: "Go on from the newest checkpoint in --output (give the same options and data).") var resume = false
    @Flag(help: "Multiply in BF16 (operands rounded to BF16, sums and master weights FP32, as torch.autocast(bfloat16)) where the CPU has BF16 dot products (AVX512_BF16 or AMX); FP32 by default.") var bf16 = false
    @Flag(help: "Recompute each layer's activations in the backward pass instead of keeping them: less memory for long sequences and large batches, about a third more time, the same result.") var gradientCheckpointing = false
    @Option(help: "Train only the top N encoder layers and the head; 0 trains the head only (default: everything).") var trainLayers: Int?
    @Option(help: "The labels in order (comma-separated; default: the training data's, sorted).") var labels: String?
    @Option(help: "A vocab.txt for models without one.") var vocab: String?
    @Flag(help: "Replace the checkpoint's classifier with a new one.") var newHead = false
    @Flag(help: "Say nothing on standard error but errors.") var quiet = false

    /// The Trainer's settings from the flags, checked; and --output not the model itself.
    func trainingOptions() throws -> TrainingOptions {
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
        return options
    }

    var givenLabels: [String]? { labels.map { $0.split(separator: ",").map(String.init) } }

    /// The model with a head of `labels` labels (a new one where the checkpoint has none, or with --new-head).
    func network(_ source: ModelSource, head: ModelHead, labels: Int) throws -> TrainableModel {
        var config = source.config
        config.numLabels = labels
        let headTensor = ["ForQuestionAnswering": "qa_outputs.weight", "ForMaskedLM": "cls.predictions.bias",
                          "ForPreTraining": "cls.predictions.bias"][head.rawValue] ?? "classifier.weight"
        let hasHead = source.tensors[headTensor] != nil
        if !hasHead && !quiet {
            switch head {
            case .questionAnswering: note("\(model) has no qa_outputs: a new one is trained")
            case .multipleChoice: note("\(model) has no classifier: a new one (a score per choice) is trained")
            case .maskedLM: note("\(model) has no masked-LM head: a new one is trained (its decoder the word embeddings)")
            default: note("\(model) has no classifier: a new one is trained for \(labels) label(s)")
            }
        }
        let products: any MatrixProducts = bf16 ? try BF16MatrixProducts() : CPUMatrixProducts()
        return try TrainableModel(config: config, tensors: source.tensors, products: products, head: head,
                                  newHead: newHead || !hasHead, seed: seed)
    }

    /// Runs `trainer` with a progress bar, Ctrl-C as a checkpoint (exit 130), and a summary on standard error.
    func run(_ trainer: ClassificationTrainer, _ body: () throws -> ClassificationTrainer.Summary) throws {
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
        let interrupt = Interrupt()
        trainer.shouldStop = { interrupt.requested }
        let summary = try body()
        bar.finish()
        if summary.interrupted {
            note("stopped at step \(summary.steps); the checkpoint \(summary.checkpoint ?? output) holds the run: the same command with --resume goes on")
            throw ExitCode(130)
        }
        if !quiet {
            let best = summary.best.map { "; best: " + $0.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", ") } ?? ""
            note("done: \(summary.steps) steps, training loss \(String(format: "%.4f", summary.trainingLoss))\(summary.stoppedEarly ? " (stopped early)" : "")\(best); model in \(output)")
        }
    }
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

    @OptionGroup var common: FinetuneOptions
    @Option(help: "The text column.") var textColumn: String = "text"
    @Option(help: "The pair column (read when present).") var pairColumn: String = "text_pair"
    @Option(help: "The label column.") var labelColumn: String = "label"

    func run() throws {
        try reportingErrors {
            let options = try common.trainingOptions()
            let columns = LabeledTexts.Columns(text: textColumn, pair: pairColumn, label: labelColumn)
            let training = try LabeledTexts.read(common.train, columns: columns)
            let evaluation = try common.eval.map { try LabeledTexts.read($0, columns: columns) }
            let labelSet = try LabelSet(training: training, given: common.givenLabels)
            let source = try ModelSource.open(common.model)
            let tokenizer = try BERTTokenizer(directory: source.tokenizerDirectory, vocabularyFile: common.vocab ?? Settings.current[.vocab])
            let network = try common.network(source, head: .sequenceClassification,
                                             labels: labelSet.problem == .meanSquaredError ? 1 : labelSet.names.count)
            let trainer = try ClassificationTrainer(model: network, tokenizer: tokenizer, labels: labelSet, options: options)
            if !common.quiet {
                note("fine-tuning \(network.config.architecture.rawValue) (\(network.parameters.values.reduce(0) { $0 + $1.count }) parameters) on \(training.count) examples, \(labelSet.problem.rawValue), labels: \(labelSet.names.joined(separator: ", "))")
            }
            try common.run(trainer) {
                try trainer.run(train: training, eval: evaluation, output: common.output, tokenizerDirectory: source.tokenizerDirectory,
                                resume: common.resume)
            }
        }
    }
}

struct FinetuneNERCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner",
        abstract: "Fine-tune a token classifier (named-entity recognition) on tagged sentences, as transformers' run_ner does.",
        discussion: """
        Data: CoNLL (a word and its tag per line, columns split by spaces or tabs, --token-column and --tag-column \
        counting from 1, the tag the last column by default; blank lines between sentences; -DOCSTART- lines \
        skipped), JSON Lines {"tokens": [...], "tags": [...]}, or JSON Lines {"text": ..., "entities": [{"start", \
        "end", "label"}]} (character spans on whitespace-split words, tagged IOB2). Tags: O, or B-, I-, E-, S- and a \
        type (IOB1, IOB2 and BIOES; the scheme found is stated). The labels are the training tags sorted, unless \
        --labels names them. Each word's first token carries its tag and its other tokens are ignored \
        (--label-all-tokens: they carry it too, B- as I-); words past --max-length are counted and reported, or, with \
        --stride N, a longer sentence becomes overlapping windows sharing N tokens (each word evaluated once, from the \
        window where it has the most context). \
        Evaluation, as run_ner reports it: seqeval's entity precision, recall and F1 overall and per type, token \
        accuracy (--strict IOB2 for seqeval's strict mode). Training is the Trainer's, as in `finetune classify` \
        (checkpoints, --resume, early stopping, --bf16, --train-layers); the output loads in transformers' \
        AutoModelForTokenClassification and in our `ner` and `serve`.

        Examples:
          megatron-bert finetune ner --model ./megatron-bert-cased-345m --train train.conll --eval dev.conll --output ./ner --metric f1
          megatron-bert finetune ner --model M --train train.jsonl --output out --label-all-tokens --strict IOB2
        """
    )

    @OptionGroup var common: FinetuneOptions
    @Option(help: "CoNLL: the column of the word (from 1).") var tokenColumn: Int = 1
    @Option(help: "CoNLL: the column of the tag (from 1; default: the last).") var tagColumn: Int?
    @Flag(help: "Label every token of a word, not only its first (a B- tag as I- on the later tokens).") var labelAllTokens = false
    @Option(help: "Split a sentence over --max-length into overlapping windows sharing N tokens (default: cut it, counting the words lost).") var stride: Int?
    @Option(help: "Evaluate in seqeval's strict mode for this scheme: IOB1, IOB2, IOE1, IOE2, IOBES, BILOU (default: its default mode).") var strict: String?

    func run() throws {
        try reportingErrors {
            var options = try common.trainingOptions()
            options.labelAllTokens = labelAllTokens
            options.wordStride = stride
            if let strict {
                guard let scheme = TagScheme(rawValue: strict.uppercased()) else {
                    throw CommandError("--strict \(strict) is not one of \(TagScheme.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                options.strictScheme = scheme
            }
            let training = try TaggedSentences.read(common.train, tokenColumn: tokenColumn, tagColumn: tagColumn)
            let evaluation = try common.eval.map { try TaggedSentences.read($0, tokenColumn: tokenColumn, tagColumn: tagColumn) }
            let labelSet = try LabelSet(tagged: training, given: common.givenLabels)
            let source = try ModelSource.open(common.model)
            let tokenizer = try BERTTokenizer(directory: source.tokenizerDirectory, vocabularyFile: common.vocab ?? Settings.current[.vocab])
            let network = try common.network(source, head: .tokenClassification, labels: labelSet.names.count)
            let trainer = try ClassificationTrainer(model: network, tokenizer: tokenizer, labels: labelSet, options: options)
            if !common.quiet {
                let scheme = TagScheme.detect(training.map(\.tags))
                note("fine-tuning \(network.config.architecture.rawValue) for NER on \(training.count) sentences, \(scheme == .iobes ? "BIOES" : scheme.rawValue) tags: \(labelSet.names.joined(separator: ", "))")
            }
            try common.run(trainer) {
                try trainer.run(tagged: training, eval: evaluation, output: common.output, tokenizerDirectory: source.tokenizerDirectory,
                                resume: common.resume)
            }
        }
    }
}

struct FinetuneQACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qa",
        abstract: "Fine-tune extractive question answering (SQuAD v1.1 / v2.0), as transformers' run_qa does.",
        discussion: """
        Data: SQuAD JSON (v1.1 or v2.0: data → paragraphs → context and qas with id, question, answers \
        [{text, answer_start}], is_impossible) or JSON Lines {"id", "question", "context", "answers": {"text": [...], \
        "answer_start": [...]}}; every answer must sit at its answer_start (characters from 0). Features as run_qa's: \
        [CLS] question [SEP] context [SEP] windows of --max-length tokens (384) over the context, neighbours sharing \
        --doc-stride tokens (128), each window trained towards the first answer's tokens, or [CLS] when it does not \
        hold the answer or the question has none. Evaluation runs our `qa` pipeline's post-processing (spans of at \
        most --max-answer-length tokens, widened to whole words) and scores as the official SQuAD v2.0 script does: \
        exact, f1, and HasAns / NoAns splits with unanswerable questions. With unanswerable questions in the data (or \
        --version-2-with-negative) an answer is "" when log p(no answer) - log p(best span) exceeds \
        --null-score-diff-threshold (0). Training is the Trainer's, as in `finetune classify` (checkpoints, --resume, \
        early stopping, --bf16, --train-layers); the output loads in transformers' AutoModelForQuestionAnswering and in \
        our `qa` and `serve`.

        Examples:
          megatron-bert finetune qa --model ./megatron-bert-cased-345m --train train-v1.1.json --eval dev-v1.1.json --output ./squad --metric f1
          megatron-bert finetune qa --model M --train train-v2.0.json --eval dev-v2.0.json --output out --null-score-diff-threshold 1.5
        """
    )

    @OptionGroup var common: FinetuneOptions
    @Option(help: "Tokens shared by neighbouring windows of a long context (default: 128, or half a window when windows are shorter than 256).") var docStride: Int?
    @Option(help: "Evaluation: the most tokens an answer may span.") var maxAnswerLength: Int = 30
    @Option(help: "Evaluation with unanswerable questions: answer \"\" when log p(no answer) - log p(best span) is over this.") var nullScoreDiffThreshold: Double = 0
    @Flag(help: "Questions may have no answer (SQuAD v2.0); on by itself when the data hold an unanswerable question.") var version2WithNegative = false

    func run() throws {
        try reportingErrors {
            var options = try common.trainingOptions()
            options.maxLength = options.maxLength ?? 384
            options.maxAnswerLength = maxAnswerLength
            options.nullScoreDiffThreshold = nullScoreDiffThreshold
            try options.validate()
            let training = try QuestionAnswers.read(common.train)
            let evaluation = try common.eval.map { try QuestionAnswers.read($0) }
            let unanswerable = training.filter { $0.answers.isEmpty }.count
            options.versionTwoWithNegative = version2WithNegative || unanswerable > 0 || evaluation?.contains { $0.answers.isEmpty } == true
            let source = try ModelSource.open(common.model)
            let tokenizer = try BERTTokenizer(directory: source.tokenizerDirectory, vocabularyFile: common.vocab ?? Settings.current[.vocab])
            let network = try common.network(source, head: .questionAnswering, labels: 2)
            let window = min(options.maxLength ?? 384, network.config.maxPositionEmbeddings)
            options.docStride = docStride ?? min(128, window / 2)
            try options.validate()
            let trainer = try ClassificationTrainer(model: network, tokenizer: tokenizer, labels: .answerSpans, options: options)
            if !common.quiet {
                note("fine-tuning \(network.config.architecture.rawValue) for question answering on \(training.count) questions\(unanswerable > 0 ? " (\(unanswerable) unanswerable: SQuAD v2.0 evaluation)" : ""), \(trainer.maxLength) tokens per window, doc stride \(options.docStride)")
            }
            try common.run(trainer) {
                try trainer.run(questions: training, eval: evaluation, output: common.output, tokenizerDirectory: source.tokenizerDirectory,
                                resume: common.resume)
            }
        }
    }
}

struct FinetuneMultipleChoiceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "multiple-choice",
        abstract: "Fine-tune multiple choice (SWAG, RACE), as transformers' run_swag does.",
        discussion: """
        Data: JSON Lines {"prompt": ..., "choices": [...], "label": ...}, one example a line (SWAG: the context as the \
        prompt and the endings as choices; RACE: the article and question as the prompt and the options as choices), \
        the label the right choice's index from 0 or its letter (A, B, ...); every example has as many choices as the \
        first. Each (prompt, choice) pair is one sequence, cut to --max-length tokens (the longer text first); the \
        model scores every choice from its pooled [CLS] and is trained with cross-entropy over an example's choices. \
        Evaluation: accuracy and loss. Training is the Trainer's, as in `finetune classify` (checkpoints, --resume, \
        early stopping, --bf16, --train-layers); the output loads in transformers' AutoModelForMultipleChoice and in \
        our `multiple-choice` and `serve`.

        Examples:
          megatron-bert finetune multiple-choice --model ./megatron-bert-cased-345m --train swag-train.jsonl --eval swag-dev.jsonl --output ./swag --metric accuracy
          megatron-bert finetune multiple-choice --model M --train race.jsonl --prompt-column article_question --choices-column options --label-column answer --output out
        """
    )

    @OptionGroup var common: FinetuneOptions
    @Option(help: "The prompt column.") var promptColumn: String = "prompt"
    @Option(help: "The column of the choices (a list of strings).") var choicesColumn: String = "choices"
    @Option(help: "The label column (the right choice's index from 0, or its letter).") var labelColumn: String = "label"

    func run() throws {
        try reportingErrors {
            let options = try common.trainingOptions()
            let columns = ChoiceExamples.Columns(prompt: promptColumn, choices: choicesColumn, label: labelColumn)
            let training = try ChoiceExamples.read(common.train, columns: columns)
            let evaluation = try common.eval.map { try ChoiceExamples.read($0, columns: columns, choices: training[0].choices.count) }
            let source = try ModelSource.open(common.model)
            let tokenizer = try BERTTokenizer(directory: source.tokenizerDirectory, vocabularyFile: common.vocab ?? Settings.current[.vocab])
            let network = try common.network(source, head: .multipleChoice, labels: 1)
            let trainer = try ClassificationTrainer(model: network, tokenizer: tokenizer, labels: .choices, options: options)
            if !common.quiet {
                note("fine-tuning \(network.config.architecture.rawValue) for multiple choice on \(training.count) examples of \(training[0].choices.count) choices")
            }
            try common.run(trainer) {
                try trainer.run(choices: training, eval: evaluation, output: common.output, tokenizerDirectory: source.tokenizerDirectory,
                                resume: common.resume)
            }
        }
    }
}

struct FinetuneMLMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlm",
        abstract: "Go on pre-training with masked LM on a domain's text (as NVIDIA made BioMegatron), as transformers' run_mlm does.",
        discussion: """
        Data: plain text, one document per line (blank lines skipped), or JSON Lines with a --text-column string. \
        Sequences as run_mlm's: every document tokenized with [CLS] and [SEP], all one after another, cut into \
        blocks of --max-length tokens (the last partial block dropped) — or, with --line-by-line, each document its own \
        sequence. Each batch is masked afresh: 15% of the tokens (--mlm-probability), or whole words with \
        --whole-word-mask, of which 80% become [MASK], 10% a random token and 10% stay; the loss is cross-entropy at \
        them. Evaluation: loss and perplexity (e^loss) on the same masks at every evaluation. The model keeps its \
        architecture: a pre-training checkpoint (NVIDIA's) stays MegatronBertForPreTraining, its next-sentence head \
        untouched; a masked-LM one stays ForMaskedLM; an encoder alone gets a new masked-LM head. Training is the \
        Trainer's, as in `finetune classify` (checkpoints, --resume, early stopping, --bf16, --train-layers); the output \
        runs in our `fill-mask` and `serve`, and in transformers.

        --next-sentence-prediction (pre-training checkpoints) trains the next-sentence head as well, as BERT was \
        pre-trained. Data in BERT's pre-training format: one sentence per line, blank lines between documents (or JSON \
        Lines, each object a document whose --text-column is an array of sentences). Pairs as BERT's \
        create_pretraining_data.py makes them from the seed: sentences gathered up to --max-length (10% of the time a \
        shorter random length), split into A and B; half of the time B comes from another document instead; pairs cut to \
        fit. The loss is the masked tokens' plus the next-sentence one; evaluation adds next_sentence_loss and \
        next_sentence_accuracy (loss is then the sum, perplexity still e^masked_lm_loss).

        Examples:
          megatron-bert finetune mlm --model ./megatron-bert-cased-345m --train pubmed.txt --eval pubmed-dev.txt --output ./bio-megatron --max-length 128
          megatron-bert finetune mlm --model M --train notes.jsonl --text-column body --whole-word-mask --output out --metric perplexity
          megatron-bert finetune mlm --model ./megatron-bert-cased-345m --train sentences.txt --next-sentence-prediction --output ./adapted
        """
    )

    @OptionGroup var common: FinetuneOptions
    @Option(help: "JSON Lines: the text column.") var textColumn: String = "text"
    @Flag(help: "Each document its own sequence (cut to --max-length) instead of packing them.") var lineByLine = false
    @Option(help: "The fraction of tokens each batch predicts.") var mlmProbability: Double = 0.15
    @Flag(help: "Mask whole words (all of a word's tokens) rather than tokens.") var wholeWordMask = false
    @Flag(help: "Train next-sentence prediction too (pre-training checkpoints; data one sentence per line, blank lines between documents).")
    var nextSentencePrediction = false

    func run() throws {
        try reportingErrors {
            var options = try common.trainingOptions()
            (options.mlmProbability, options.wholeWordMask) = (mlmProbability, wholeWordMask)
            try options.validate()
            if nextSentencePrediction && lineByLine {
                throw CommandError("--next-sentence-prediction makes sentence pairs; --line-by-line makes single sequences: choose one")
            }
            let source = try ModelSource.open(common.model)
            let pretraining = source.tensors["cls.seq_relationship.weight"] != nil
            if nextSentencePrediction && !pretraining {
                throw CommandError("--next-sentence-prediction trains a pre-training checkpoint's next-sentence head, and \(common.model) has none (no cls.seq_relationship): leave the flag out to train masked LM alone")
            }
            let tokenizer = try BERTTokenizer(directory: source.tokenizerDirectory, vocabularyFile: common.vocab ?? Settings.current[.vocab])
            let network = try common.network(source, head: pretraining ? .preTraining : .maskedLM, labels: 2)
            let trainer = try ClassificationTrainer(model: network, tokenizer: tokenizer, labels: .languageModel, options: options)
            let masked = "\(wholeWordMask ? "whole words" : "tokens") masked at \(mlmProbability)"
            if nextSentencePrediction {
                let training = try MaskedLMData.readDocuments(common.train, column: textColumn)
                let evaluation = try common.eval.map { try MaskedLMData.readDocuments($0, column: textColumn) }
                if !common.quiet {
                    note("masked-LM and next-sentence training of \(network.config.architecture.rawValue) on sentence pairs from \(training.count) documents (\(training.map(\.count).reduce(0, +)) sentences), up to \(trainer.maxLength) tokens per pair, \(masked)")
                }
                try common.run(trainer) {
                    try trainer.run(sentencePairsFrom: training, eval: evaluation, output: common.output,
                                    tokenizerDirectory: source.tokenizerDirectory, resume: common.resume)
                }
                return
            }
            let training = try MaskedLMData.read(common.train, column: textColumn)
            let evaluation = try common.eval.map { try MaskedLMData.read($0, column: textColumn) }
            if !common.quiet {
                note("masked-LM training of \(network.config.architecture.rawValue) (\(network.head.rawValue.dropFirst(3))) on \(training.count) documents, \(trainer.maxLength) tokens per sequence\(lineByLine ? ", one per line" : ", packed"), \(masked)")
            }
            try common.run(trainer) {
                try trainer.run(texts: training, eval: evaluation, lineByLine: lineByLine, output: common.output,
                                tokenizerDirectory: source.tokenizerDirectory, resume: common.resume)
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
