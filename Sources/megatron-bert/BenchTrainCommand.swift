import ArgumentParser
import Foundation
import MegatronBERT

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-train",
        abstract: "Measure fine-tuning throughput (training tokens/s) of a task's steps on the CPU.",
        discussion: """
        Each run is one optimizer step on one batch of random ids: forward with dropout as config.json says, \
        the task's loss, backward, clipping at 1.0, AdamW — what the Hugging Face Trainer does per step. --task: \
        classify (a 2-label sequence classifier), ner (9 labels per token), qa (start and end positions), \
        multiple-choice (B sequences as B/4 examples of 4 choices), mlm (15% of the tokens predicted). Each point \
        runs twice to warm up (the buffer pool and the optimizer's moments settle after two steps), then for at least --min-seconds and --min-runs; tokens/s from the median and the best \
        run. --random-weights builds the 345M Megatron-BERT shape with the task's head.
        Compare with PyTorch on the same machine, in one run: python3 scripts/bench_training.py.

        Example:
          megatron-bert bench-train --random-weights --points 8x128 --json
        """
    )

    @Option(help: "Model directory (its encoder, with a new head of the task's shape).")
    var model: String?

    @Flag(help: "The 345M Megatron-BERT shape with random weights.")
    var randomWeights = false

    @Option(help: "Comma-separated BxS points.")
    var points: String = "8x128"

    @Option(help: "Minimum measured seconds per point.")
    var minSeconds: Double = 10

    @Option(parsing: .unconditional, help: "Minimum measured runs per point.")
    var minRuns: Int = 2

    @Flag(help: "Print one JSON object per point.")
    var json = false

    @Flag(help: "Multiply in BF16 where the CPU has BF16 dot products (finetune's --bf16).")
    var bf16 = false

    @Flag(help: "Recompute each layer's activations in the backward pass (finetune's --gradient-checkpointing).")
    var gradientCheckpointing = false

    @Option(help: "classify, ner, qa, multiple-choice or mlm.")
    var task: String = "classify"

    static let heads: [String: ModelHead] = ["classify": .sequenceClassification, "ner": .tokenClassification, "qa": .questionAnswering,
                                             "multiple-choice": .multipleChoice, "mlm": .maskedLM]

    func validate() throws {
        guard (model == nil) == randomWeights else { throw ValidationError("give exactly one of --model DIR or --random-weights") }
        guard minRuns >= 1 else { throw ValidationError("--min-runs must be at least 1") }
        let grid = try BenchCommand.points(points, minimumSequence: 2)  // [CLS] and a token
        guard let head = Self.heads[task] else { throw ValidationError("--task \(task) is not one of classify, ner, qa, multiple-choice, mlm") }
        if head == .multipleChoice, let (b, _) = grid.first(where: { $0.0 % 4 != 0 }) {
            throw ValidationError("--task multiple-choice: a batch of \(b) sequences is not whole examples of 4 choices")
        }
    }

    func run() throws {
        try reportingErrors {
            let grid = try BenchCommand.points(points, minimumSequence: 2)
            let network: TrainableModel
            let products: any MatrixProducts = bf16 ? try BF16MatrixProducts() : CPUMatrixProducts()
            let head = Self.heads[task] ?? .sequenceClassification
            let labels = head == .tokenClassification ? 9 : 2
            if let model {
                let source = try ModelSource.open(model)
                var config = source.config
                config.numLabels = labels  // a new head of the task's shape
                network = try TrainableModel(config: config, tensors: source.tensors, products: products, head: head, newHead: true)
            } else {
                var config = BertConfig.megatronBERT345M
                config.numLabels = labels
                network = try TrainableModel(randomWeightsFor: config, products: products, head: head)
            }
            network.recomputeActivations = gradientCheckpointing
            let config = network.config, parameters = network.parameterList
            var optimizer = AdamW()
            var random = SeededRandom(seed: 7)
            if !json {
                Console.line("model: \(model ?? "random 345M Megatron-BERT"), \(task) (\(head.rawValue)), \(parameters.reduce(0) { $0 + $1.count }) parameters, \(System.cores) cores, \(products.precision), dropout \(network.dropout.hidden)\(gradientCheckpointing ? ", activations recomputed" : "")")
                Console.line("batch  seq  runs   median s   tokens/s   best tok/s   peak RSS MB")
            }
            for (b, s) in grid {
                guard s <= config.maxPositionEmbeddings else { throw CommandError("--points: \(s) tokens exceed max_position_embeddings \(config.maxPositionEmbeddings)") }
                let ids = (0..<b).map { _ in [2] + (1..<s).map { _ in 1000 % config.vocabSize + Int(random.next() % UInt64(config.vocabSize - 1000 % config.vocabSize)) } }
                let types = ids.map { $0.map { _ in 0 } }, mask = ids.map { $0.map { _ in 1 } }
                // The task's targets: a class per sequence or per token, a start and an end, the right choice, or the
                // original ids of 15% of the tokens (every position p with p·7 mod 100 < 15, [CLS] aside).
                let positions = (0..<(b * s)).filter { $0 % s != 0 && ($0 * 7) % 100 < 15 }
                let objective: (Tensor) throws -> (loss: Double, gradient: Tensor)
                switch head {
                case .tokenClassification:
                    let targets = (0..<(b * s)).map { Double($0 % labels) }
                    objective = { try Loss.crossEntropy.evaluate($0, targets: targets) }
                case .questionAnswering:
                    let starts = (0..<b).map { 1 + $0 % (s - 1) }, ends = starts.map { min($0 + 2, s - 1) }
                    objective = { try SpanLoss.evaluate($0, starts: starts, ends: ends) }
                case .multipleChoice:
                    let targets = (0..<(b / 4)).map { Double($0 % 4) }
                    objective = { try Loss.choices($0, labels: targets) }
                case .maskedLM:
                    let targets = positions.map { Double(ids[$0 / s][$0 % s]) }
                    objective = { try Loss.crossEntropy.evaluate($0, targets: targets) }
                default:
                    let targets = (0..<b).map { Double($0 % labels) }
                    objective = { try Loss.crossEntropy.evaluate($0, targets: targets) }
                }
                func step() throws {
                    _ = try network.step(ids: ids, types: types, mask: mask, positions: head == .maskedLM ? positions : nil,
                                         random: &random, objective: objective)
                    optimizer.clippedStep(parameters, learningRate: 5e-5, maxNorm: 1)  // and the gradients zeroed
                }
                try step(); try step()  // warm-up: the buffer pool reaches its steady state at the second step
                let times = try BenchCommand.timedRuns(minRuns: minRuns, minSeconds: minSeconds, step)
                let median = times[times.count / 2], tokens = Double(b * s)
                if json {
                    Console.line("{\"batch\": \(b), \"seq\": \(s), \"runs\": \(times.count), \"median_seconds\": \(median), \"tokens_per_second\": \(tokens / median), \"best_tokens_per_second\": \(tokens / times[0]), \"peak_rss_bytes\": \(System.peakResidentBytes), \"precision\": \"\(products.precision)\", \"recomputed\": \(gradientCheckpointing), \"task\": \"\(task)\"}")
                } else {
                    Console.line(String(format: "%5d %4d %5d %10.3f %10.1f %12.1f %13.0f", b, s, times.count, median, tokens / median,
                                        tokens / times[0], Double(System.peakResidentBytes) / 1_048_576))
                }
                Console.flush()
            }
        }
    }
}
