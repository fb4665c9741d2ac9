import ArgumentParser
import Foundation
import MegatronBERT
import TensorFiles

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Megatron-LM checkpoint (.pt, or NVIDIA's NGC .zip) into a Hugging Face model directory.",
        discussion: """
        Writes config.json (with architectures), model.safetensors (fp32, or --dtype fp16/bf16) and, with --vocab, \
        vocab.txt and tokenizer_config.json (lowercasing only for an uncased tokenizer_type in the checkpoint's \
        args). What the conversion had to assume (e.g. layer_norm_eps when args are absent) is printed.

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

    @Option(help: "Attention heads, for checkpoints without args.")
    var heads: Int?

    @Option(help: "Precision of the written weights: fp32, fp16 or bf16.")
    var dtype: DType = .fp32

    func run() throws {
        try reportingErrors {
            let converted = try MegatronConversion.load(path: source, heads: heads)
            try converted.write(to: output, vocabulary: vocab, dtype: dtype)
            let c = converted.config
            print("wrote \(output): \(c.architectures.first ?? "?"), \(c.numHiddenLayers) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads) heads, vocab \(c.vocabSize), \(dtype)")
            for note in converted.notes { print("note: \(note)") }
        }
    }
}
