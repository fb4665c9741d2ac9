import ArgumentParser
import Foundation
import MegatronBERT
import TensorFiles

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Megatron-LM checkpoint (.pt, or NVIDIA's NGC .zip) into a Hugging Face model directory.",
        discussion: """
        Writes config.json (with architectures), model.safetensors (fp32, or --dtype fp16/bf16), tokenizer_config.json \
        and, with --vocab, vocab.txt. Whether the tokenizer lowercases comes from --lowercase / --cased, else the \
        checkpoint's args (tokenizer_type), else the vocabulary (an uncased one has no upper-case pieces), else the \
        embedding rows (NVIDIA's cased model has 29056, its uncased one 30592); the choice and its reason are printed, \
        as is what the conversion had to assume (e.g. layer_norm_eps when args are absent).

        The directory appears all at once: files are written into a hidden directory beside it and renamed into place, \
        and an existing directory is replaced only if it holds nothing but a conversion's files.

        Example:
          megatron-bert convert megatron_bert_345m_v0.1_cased.zip --output ./megatron-bert-cased-345m \\
              --vocab vocab/megatron-bert-cased-vocab.txt
        """
    )

    @Argument(help: "The Megatron-LM .pt file or NGC .zip.")
    var source: String

    @Option(help: "The directory to write (created if missing).")
    var output: String

    @Option(help: "A vocab.txt to copy in, with a matching tokenizer_config.json.")
    var vocab: String?

    @Option(parsing: .unconditional, help: "Attention heads, for checkpoints without args.")
    var heads: Int?

    @Option(help: "Precision of the written weights: fp32, fp16 or bf16.")
    var dtype: DType = .fp32

    @Flag(help: "The tokenizer lowercases and strips accents (an uncased model).")
    var lowercase = false

    @Flag(help: "The tokenizer keeps case (a cased model).")
    var cased = false

    func validate() throws {
        if lowercase && cased { throw ValidationError("give --lowercase or --cased, not both") }
        if let heads, heads < 1 { throw ValidationError("--heads must be at least 1 (it is \(heads))") }
        if dtype == .int8 {
            throw ValidationError("--dtype int8 is a way to run a model (weights quantized at load), not a file format: convert to fp32, fp16 or bf16 and run with --dtype int8")
        }
    }

    func run() throws {
        try reportingErrors {
            let converted = try MegatronConversion.load(path: source, heads: heads)
            let stated = lowercase || cased ? TokenizerCasing.stated(lowercase: lowercase, by: lowercase ? "--lowercase" : "--cased") : nil
            let (casing, warnings) = try converted.write(to: output, vocabulary: vocab, dtype: dtype, stated: stated)
            let c = converted.config
            Console.line("wrote \(output): \(c.architectures.first ?? "?"), \(c.numHiddenLayers) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads) heads, vocab \(c.vocabSize), \(dtype)")
            Console.line("tokenizer: \(casing.choice)")
            for warning in warnings { Console.line("warning: \(warning)") }
            for note in converted.notes { Console.line("note: \(note)") }
        }
    }
}
