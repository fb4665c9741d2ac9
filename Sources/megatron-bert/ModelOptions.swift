import ArgumentParser
import Foundation
import MegatronBERT

extension Device: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }

    /// The --device help, shared by every command that runs a model.
    static let help = ArgumentHelp("auto (an NVIDIA GPU when a usable one and the CUDA libraries are found, else the CPU), cpu, cuda or cuda:N. CUDA libraries are looked for in $MEGATRON_BERT_CUDA_PATH, the nvidia-* Python wheels, then the loader's path.")
    static let tf32Help = ArgumentHelp("On the GPU, let FP32 products use TF32 tensor cores (faster; ~1e-3 relative error instead of FP32's 1e-6).")

    /// Opens the backend, saying on standard error which device runs the model unless `quiet`.
    func backend(dtype: DType, tf32: Bool, quiet: Bool) throws -> any Backend {
        let (backend, line) = try reportingErrors { try open(dtype: dtype, tf32: tf32) }
        if !quiet { note(line) }
        return backend
    }
}

/// What a stream does with a bad input line.
enum OnError: String, ExpressibleByArgument, CaseIterable {
    case stop, record
}

/// The options every task command shares: which model, how to run it, where the inputs come from.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model directory, Megatron-LM .pt / NGC .zip, or Megatron-LM checkpoint directory (default: NVIDIA's cased 345M model, downloaded and converted once into ~/.cache/megatron-bert).")
    var model: String?

    @Option(help: "A vocab.txt to use instead of the model's own (needed for Megatron-LM files, which have none). Without it, $MEGATRON_BERT_VOCAB serves models that have no vocabulary of their own, and the default model's download.")
    var vocab: String?

    @Option(help: Device.help)
    var device: Device = .auto

    @Flag(help: Device.tf32Help)
    var tf32 = false

    @Option(help: DType.help)
    var dtype: DType = .fp32

    @Option(parsing: .unconditional, help: "Sequences per forward pass (inputs are sorted by length within each chunk to cut padding; embed on the CPU packs sequences without padding, up to 2048 tokens a pass, instead).")
    var batchSize: Int = 8

    @Option(help: "A JSON Lines file of inputs ('-' for standard input); results stream out in input order. A line's \"id\" (any JSON value) is copied onto its output line ({\"id\": …, \"result\": […]} for list results), and each batch written to a pipe is answered without waiting for more, so a long-lived process serves a worker.")
    var input: String?

    @Flag(help: "JSON output: an array with one element per TEXT argument; JSON Lines (one result per line) for --input or lines on standard input.")
    var json = false

    @Flag(help: "No progress bar and no warnings on standard error.")
    var quiet = false

    @Option(name: .customLong("on-error"), help: "For --input and lines on standard input: stop (at the first bad line, naming it) or record (a bad line's output line is {\"id\": …, \"error\": \"why\"} and the run goes on).")
    var onError: OnError = .stop

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    /// Loads the model and tokenizer, downloading the default model first when no --model is given.
    func loadPipeline() throws -> Pipeline {
        try StageTimes.shared.measure("load") { try openPipeline() }
    }

    private func openPipeline() throws -> Pipeline {
        let vocabulary = vocab ?? Settings.current[.vocab]
        let path: String
        if let model {
            path = model
        } else {
            let download = ModelDownload(variant: .cased)
            if !FileManager.default.fileExists(atPath: download.modelDirectory + "/model.safetensors") {
                guard let vocabulary else {
                    throw CommandError("no --model given, and the default model is not downloaded yet: pass --vocab vocab/megatron-bert-cased-vocab.txt (or set MEGATRON_BERT_VOCAB) so that the download can be converted with its vocabulary, or pass --model DIR")
                }
                note("downloading NVIDIA's Megatron-BERT 345M (cased) into \(download.cacheDirectory) (once)")
                _ = try download.run(vocabulary: vocabulary, progress: ProgressBar.download(quiet: quiet))
            }
            path = download.modelDirectory
        }
        let quiet = self.quiet
        let backend = try device.backend(dtype: dtype, tf32: tf32, quiet: quiet)
        return try Pipeline(path: path, dtype: dtype, vocabulary: model == nil ? nil : vocab,
                            fallbackVocabulary: model == nil ? nil : Settings.current[.vocab], batchSize: batchSize, backend: backend,
                            warn: { if !quiet { note("warning: " + $0) } })
    }
}

/// One line on standard error.
func note(_ message: String) {
    Console.error(message + "\n")
}
