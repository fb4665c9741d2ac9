import ArgumentParser
import Foundation
import MegatronBERT
import TensorFiles

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure forward-pass throughput (tokens/s) over a grid of batch x sequence sizes.",
        discussion: """
        Without --batch/--seq it runs the grid 1x8, 1x128, 8x128, 1x512. Each point runs once to warm up, \
        then repeats for at least --min-seconds (and --min-runs); the median time gives tokens/s, the fastest \
        run best_tokens_per_second (the steadier figure on a shared, noisy machine). \
        peak_rss_bytes is the process's peak resident memory so far (run one point alone to measure it for \
        that point). With --random-weights the model is the exact 345M Megatron-BERT pre-training shape \
        (MLM logits at every position and the NSP head), so anyone can benchmark without a checkpoint.

        --lengths FILE adds a mixed-length point: one batch of sequences of the file's lengths (e.g. \
        scripts/mixed-lengths-16.txt, drawn between 8 and 512 tokens), run packed end to end without padding \
        where the backend packs (the CPU; the GPU with its fused attention), else padded to the longest. It times \
        the encoder and pooler (no MLM head) and counts only the real tokens (useful tokens/s).

        Compare with PyTorch on the same machine: python3 scripts/bench_pytorch.py (same grid, same model shape; \
        --lengths FILE pads the same batch).
        """
    )

    @Option(help: "Model directory to benchmark.")
    var model: String?

    @Flag(help: "Use the 345M Megatron-BERT shape with random weights instead of a checkpoint.")
    var randomWeights = false

    @Option(parsing: .unconditional, help: "Batch size (with --seq: a single point instead of the grid).")
    var batch: Int?

    @Option(parsing: .unconditional, help: "Sequence length (with --batch).")
    var seq: Int?

    @Option(help: "Comma-separated BxS points instead of the grid, e.g. 1x8,1x128,128x128.")
    var points: String?

    @Option(help: "A file of sequence lengths (numbers separated by spaces, commas or lines; # comments): one batch of those lengths, packed where the backend packs, timed for the encoder and pooler (alone, or after --points/--batch when given).")
    var lengths: String?

    @Option(help: DType.help)
    var dtype: DType = .fp32

    @Option(help: Device.help)
    var device: Device = .auto

    @Flag(help: Device.tf32Help)
    var tf32 = false

    @Option(help: "Minimum measured seconds per point.")
    var minSeconds: Double = 3

    @Option(parsing: .unconditional, help: "Minimum measured runs per point.")
    var minRuns: Int = 3

    @Flag(help: "Print one JSON object per point instead of a table.")
    var json = false

    func validate() throws {
        guard (model == nil) != (!randomWeights) else {
            throw ValidationError("give exactly one of --model DIR or --random-weights")
        }
        guard (batch == nil) == (seq == nil) else { throw ValidationError("give --batch and --seq together") }
        guard points == nil || batch == nil else { throw ValidationError("give --points or --batch/--seq, not both") }
        _ = try parsedPoints()
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
        if let seq, seq < 1 { throw ValidationError("--seq must be at least 1") }
        guard minRuns >= 1 else { throw ValidationError("--min-runs must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            var points = lengths == nil ? [(1, 8), (1, 128), (8, 128), (1, 512)] : []
            if let batch, let seq { points = [(batch, seq)] }
            if let parsed = try parsedPoints() { points = parsed }
            let mixed = try lengths.map(Self.readLengths)
            if let mixed, let longest = mixed.max() {
                points.append((mixed.count, longest))  // checked for memory below as its padded size
            }
            if randomWeights {
                // Checked before the 345M model is built, so an absurd point fails at once.
                let config = BertConfig.megatronBERT345M
                let weights = config.weightBytes(dtype: dtype) ?? Int.max
                for (b, s) in points {
                    let needed = config.forwardBytes(rows: b, sequence: s, head: .preTraining)
                    guard let needed, needed <= MemoryBudget.bytes - min(weights, MemoryBudget.bytes) else {
                        throw CommandError("--batch \(b) --seq \(s): a batch that size needs about \(needed.map(MemoryBudget.describe) ?? "more memory than can be counted") beyond the \(MemoryBudget.describe(weights)) of weights; this machine has \(MemoryBudget.describe(MemoryBudget.bytes))")
                    }
                }
            }
            let backend = try device.backend(dtype: dtype, tf32: tf32, quiet: json)
            let loaded: MegatronBERTModel = try model.map { try MegatronBERTModel(path: $0, dtype: dtype, backend: backend) }
                ?? MegatronBERTModel(randomWeightsFor: .megatronBERT345M, dtype: dtype, backend: backend)
            // A device with memory of its own: outputs stay there, and its peak memory is a column.
            let onDevice = !backend.capabilities.runsOnHost
            if !json {
                let products = backend.report().products
                Console.line("model: \(model ?? "random 345M Megatron-BERT (pre-training heads)"), \(loaded.head.rawValue), \(loaded.parameterCount) parameters, dtype \(dtype), \(System.cores) cores, \((try? System.threads()) ?? System.cores) CPU threads, backend \(loaded.backend.name), products: \(products)")
                Console.line("batch  seq  runs   median ms   tokens/s   best tok/s   peak RSS MB" + (onDevice ? "   peak GPU MB" : ""))
            }
            for (index, (b, s)) in points.enumerated() {
                let mixedLengths = mixed != nil && index == points.count - 1 ? mixed : nil
                guard s <= loaded.config.maxPositionEmbeddings else {
                    if mixedLengths != nil {
                        throw CommandError("--lengths: a length of \(s) exceeds the model's max_position_embeddings \(loaded.config.maxPositionEmbeddings)")
                    }
                    throw CommandError("--seq \(s) exceeds the model's max_position_embeddings \(loaded.config.maxPositionEmbeddings)")
                }
                try loaded.checkMemory(rows: b * (loaded.head == .multipleChoice ? 2 : 1), sequence: s)
                let input = Self.batch(b, s, vocab: loaded.config.vocabSize, choices: loaded.head == .multipleChoice ? 2 : nil)
                // On a GPU the outputs stay there (PyTorch's benchmark keeps its logits on the GPU too); on the CPU
                // `forward` is the same work.
                var run = { if onDevice { try loaded.forwardOnDevice(input) } else { _ = try loaded.forward(input) } }
                var tokens = b * s
                if let mixedLengths {
                    guard loaded.head != .multipleChoice else {
                        throw CommandError("--lengths runs single sequences; this model's head is multiple choice (use --points)")
                    }
                    // The same ids as the padded point's rows, each cut to its length; the encoder and pooler only.
                    let ids = zip(input.inputIDs, mixedLengths).map { Array($0.prefix($1)) }
                    tokens = mixedLengths.reduce(0, +)
                    if loaded.runsPackedSequences {
                        let types = ids.map { $0.map { _ in 0 } }
                        run = { try loaded.forwardPackedOnDevice(ids: ids, types: types) }
                    } else {
                        let padded = Batch(inputIDs: input.inputIDs, attentionMask: mixedLengths.map { n in (0..<s).map { $0 < n ? 1 : 0 } })
                        run = { if onDevice { try loaded.forwardOnDevice(padded, runHead: false) } else { _ = try loaded.forward(padded, runHead: false) } }
                    }
                }
                backend.resetPeakDeviceBytes()
                try run()  // warm-up
                backend.resetProfile()
                let times = try Self.timedRuns(minRuns: minRuns, minSeconds: minSeconds, run)
                let median = times[times.count / 2]
                let tokensPerSecond = Double(tokens) / median
                let best = Double(tokens) / times[0]
                let rss = System.peakResidentBytes
                if json {
                    let mixedFields = mixedLengths.map { _ in ", \"mixed\": true, \"tokens\": \(tokens), \"packed\": \(loaded.runsPackedSequences)" } ?? ""
                    Console.line("{\"batch\": \(b), \"seq\": \(s)\(mixedFields), \"dtype\": \"\(dtype)\", \"runs\": \(times.count), \"median_seconds\": \(median), \"tokens_per_second\": \(tokensPerSecond), \"best_tokens_per_second\": \(best), \"peak_rss_bytes\": \(rss), \"backend\": \"\(loaded.backend.name)\", \"kernels\": [\(kernelsUsed(loaded).map { "\"\($0)\"" }.joined(separator: ", "))]\(onDevice ? Self.deviceFields(backend) : "")}")
                } else {
                    Console.line(String(format: "%5d %4d %5d %11.3f %10.1f %12.1f %13.0f", b, s, times.count, median * 1000, tokensPerSecond, best,
                                 Double(rss) / 1_048_576) + (backend.peakDeviceBytes.map { String(format: " %13.0f", Double($0) / 1_048_576) } ?? "")
                                 + (mixedLengths.map { _ in "   mixed: \(tokens) tokens, longest \(s), \(loaded.runsPackedSequences ? "packed" : "padded")" } ?? ""))
                }
                if let profile = backend.profile {
                    Console.error("profile of \(b)x\(s), \(times.count) runs (MEGATRON_BERT_CUDA_PROFILE):\n\(profile)\n")
                }
                Console.flush()
            }
            if !json { Console.line("kernels that ran the products: " + kernelsUsed(loaded).joined(separator: ", ")) }
        }
    }

    /// The lengths in a --lengths file: numbers separated by spaces, commas or newlines; `#` starts a comment.
    static func readLengths(_ path: String) throws -> [Int] {
        let data = try readInput(path, what: "the --lengths file", limit: 1 << 20)
        guard let text = String(data: data, encoding: .utf8) else { throw CommandError("--lengths: \(path) is not UTF-8 text") }
        var lengths: [Int] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            for word in content.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }) {
                guard let n = Int(word), n >= 1 else {
                    throw CommandError("--lengths: '\(word)' in \(path) is not a length of at least 1")
                }
                lengths.append(n)
            }
        }
        guard !lengths.isEmpty else { throw CommandError("--lengths: \(path) has no lengths") }
        return lengths
    }

    /// --points as (batch, seq) pairs.
    private func parsedPoints() throws -> [(Int, Int)]? { try points.map { try Self.points($0) } }

    /// "1x8,8x128" as (batch, seq) pairs, each at least `minimumSequence` tokens long.
    static func points(_ text: String, minimumSequence: Int = 1) throws -> [(Int, Int)] {
        try text.split(separator: ",").map { point in
            let parts = point.split(separator: "x")
            guard parts.count == 2, let b = Int(parts[0]), let s = Int(parts[1]), b >= 1, s >= minimumSequence else {
                throw ValidationError("--points: '\(point)' is not BxS with the batch at least 1 and the sequence at least \(minimumSequence) (e.g. 8x128)")
            }
            return (b, s)
        }
    }

    /// `run` repeated until it has run `minRuns` times and for `minSeconds`: each run's seconds, fastest first.
    static func timedRuns(minRuns: Int, minSeconds: Double, _ run: () throws -> Void) throws -> [Double] {
        var times: [Double] = []
        let started = Date()
        while times.count < minRuns || Date().timeIntervalSince(started) < minSeconds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try run()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return times.sorted()
    }

    /// The device's facts for `--json` (a GPU's name, compute capability, driver and library versions, and the point's
    /// peak device memory, weights included), as its backend reports them.
    static func deviceFields(_ backend: any Backend) -> String {
        backend.report().benchFields.map { ", \"\($0.key)\": \($0.json)" }.joined()
    }

    /// The kernels behind the products so far (oneDNN implementation names, "openblas:<core>", "small:avx2", our panel
    /// kernels' "panel:…" names).
    private func kernelsUsed(_ model: MegatronBERTModel) -> [String] {
        model.backend.kernelsUsed
    }

    /// Deterministic ids, above the special tokens' range when the vocabulary is large enough.
    static func batch(_ b: Int, _ s: Int, vocab: Int, choices: Int?) -> Batch {
        var state: UInt64 = 12345
        let low = vocab > 2000 ? 1000 : 0
        let rows = (0..<(b * (choices ?? 1))).map { _ in
            (0..<s).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return low + Int(state >> 33) % (vocab - low)
            }
        }
        return Batch(inputIDs: rows, numChoices: choices)
    }
}
