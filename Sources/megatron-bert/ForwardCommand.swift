import ArgumentParser
import Foundation
import MegatronBERT
import TensorFiles

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run one batch through a model and write every output under Hugging Face's names (the parity tool).",
        discussion: """
        The input is JSON: {"input_ids": [[...]], "attention_mask": [[...]], "token_type_ids": [[...]]}; the last \
        two are optional (defaults: all ones, all zeros). A multiple-choice model takes arrays shaped \
        (batch, choices, sequence). The output is a safetensors file of F32 tensors: last_hidden_state, \
        pooler_output (when the model has a pooler) and the head's outputs (prediction_logits, \
        seq_relationship_logits, logits, start_logits, end_logits), shaped as transformers shapes them.

        Example:
          megatron-bert forward --model ./megatron-bert-cased-345m --input batch.json --output out.safetensors
        """
    )

    @Option(help: "Model directory (config.json + weights), a weight file beside its config.json, or a Megatron-LM .pt / NGC .zip (converted in memory).")
    var model: String

    @Option(help: "Batch JSON file ('-' for standard input).")
    var input: String

    @Option(help: "Where to write the outputs (.safetensors).")
    var output: String

    @Option(help: DType.help)
    var dtype: DType = .fp32

    @Option(help: Device.help)
    var device: Device = .auto

    @Flag(help: Device.tf32Help)
    var tf32 = false

    @Flag(help: "Say nothing on standard error but errors.")
    var quiet = false

    func run() throws {
        try reportingErrors {
            // Parsed JSON takes several times its text: the file may use a sixteenth of the memory left.
            let batch = try Batch(json: try readInput(input, what: "the batch file", limit: MemoryBudget.available() / 16))
            let backend = try device.backend(dtype: dtype, tf32: tf32, quiet: quiet)
            let model = try MegatronBERTModel(path: self.model, dtype: dtype, backend: backend)
            let outputs = try model.forward(batch)
            let bytes = try SafeTensorsFile.serialize(outputs.all.map {
                (name: $0.name, dtype: .float32, shape: $0.tensor.shape, data: $0.tensor.bytes)
            })
            guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
                throw CommandError("cannot write \(output)")
            }
            let summary = outputs.all.map { "\($0.name) \($0.tensor.shape)" }.joined(separator: ", ")
            if !quiet { Console.error("wrote \(output): \(summary)\n") }
        }
    }
}
