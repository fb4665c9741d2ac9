import ArgumentParser
import Foundation
import MegatronBERT

extension ScoreFunction: ExpressibleByArgument {}

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Sequence classification with a fine-tuned head: labels from config.json's id2label.",
        discussion: """
        Output per text: the top-k {label, score}, best first. Scores are a softmax, or a sigmoid when \
        problem_type is multi_label_classification (or there is one label), as transformers chooses.

        Examples:
          megatron-bert classify --model ./my-finetuned-megatron --top-k 2 "A wonderful film."
          megatron-bert classify --model M --pair "It is raining." "The ground is wet."
          megatron-bert classify --model M --input reviews.jsonl --json    # lines {"text": "...", "text_pair": "..."}
        """
    )

    @OptionGroup var options: ModelOptions

    @Option(parsing: .unconditional, help: "Labels per text (0: all).")
    var topK: Int = 1

    @Option(help: "Second text of a pair (classifies TEXT with it).")
    var pair: String?

    @Option(help: "softmax, sigmoid or none (default: from config.json's problem_type).")
    var function: ScoreFunction?

    @Argument(help: "Texts to classify.")
    var texts: [String] = []

    func validate() throws {
        guard topK >= 0 else { throw ValidationError("--top-k must be 0 (all labels) or more") }
    }

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            let runner = TaskRunner<(text: String, pair: String?), [LabelScore]>(
                options: options,
                task: .classify, item: { ($0.text("text"), $0.optionalText("text_pair")) },
                fromLine: { ($0, nil) },
                run: { try pipeline.classify($0, topK: topK == 0 ? nil : topK, function: function) },
                describe: { item, labels in
                    ([item.text + (item.pair.map { "  |  " + $0 } ?? "")] + labels.map { "  \(formatScore($0.score))  \($0.label)" })
                        .joined(separator: "\n")
                })
            try runner(texts.map { ($0, pair) })
        }
    }
}
