import ArgumentParser
import Foundation
import MegatronBERT

struct FillMaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill-mask",
        abstract: "Predict the words behind each [MASK] (masked-LM or pre-training checkpoints).",
        discussion: """
        Per text, the top-k tokens for every [MASK] with Hugging Face's fields: score, token, token_str, sequence. \
        A text with one mask gives a list of predictions; with several, one list per mask. The padded vocabulary \
        rows and special tokens are never predicted. Texts over the model's 512 tokens are truncated with a warning.

        Examples:
          megatron-bert fill-mask --model ./megatron-bert-cased-345m "The capital of France is [MASK]."
          megatron-bert fill-mask --model M --targets Paris,London --json "The capital of France is [MASK]."
          megatron-bert fill-mask --model M --input texts.jsonl --json      # lines {"text": "..."}
          echo "Paris is the [MASK] of France." | megatron-bert fill-mask --model M
        """
    )

    @OptionGroup var options: ModelOptions

    @Option(parsing: .unconditional, help: "Predictions per mask.")
    var topK: Int = 5

    func validate() throws {
        try checkFlag(.fillMask, "top_k", topK)
    }

    @Option(help: "Only score these words (comma-separated).")
    var targets: String?

    @Argument(help: "Texts with [MASK] where a word is missing.")
    var texts: [String] = []

    /// HF's shape: a list for one mask, a list of lists for several.
    typealias Output = FillMaskAnswer

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            let targetList = targets.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            let runner = TaskRunner<String, Output>(
                options: options,
                task: .fillMask, item: { $0.text("text") },
                fromLine: { $0 },
                run: { try pipeline.fillMask($0, topK: topK, targets: targetList).map(Output.init) },
                describe: { text, output in
                    var lines = [text]
                    for (m, predictions) in output.masks.enumerated() {
                        if output.masks.count > 1 { lines.append("  mask \(m + 1):") }
                        for (rank, p) in predictions.enumerated() {
                            lines.append("  \(rank + 1). \(formatScore(p.score))  \(p.tokenString.padding(toLength: 14, withPad: " ", startingAt: 0)) \(p.sequence)")
                        }
                    }
                    return lines.joined(separator: "\n")
                })
            try runner(texts)
        }
    }
}
