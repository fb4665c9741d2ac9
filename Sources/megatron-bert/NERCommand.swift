import ArgumentParser
import Foundation
import MegatronBERT

extension Aggregation: ExpressibleByArgument {}

struct NERCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner",
        abstract: "Named-entity recognition (token classification) with a fine-tuned head.",
        discussion: """
        Output per text: entities with entity_group (or entity and index with --aggregation none), score, word, \
        and start/end character offsets into the text. Aggregation works as transformers' \
        aggregation_strategy. Texts longer than the model's window are read in windows overlapping by --stride \
        tokens (except with --aggregation none, which truncates with a warning).

        Examples:
          megatron-bert ner --model ./my-ner-megatron "John Smith lives in New York."
          megatron-bert ner --model M --aggregation first --input news.jsonl --json   # lines {"text": "..."}
        """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "none, simple, first, average or max.")
    var aggregation: Aggregation = .simple

    @Option(parsing: .unconditional, help: "Tokens shared by neighbouring windows of a long text (default: an eighth of the window).")
    var stride: Int?

    func validate() throws {
        if let stride, stride < 0 { throw ValidationError("--stride must be 0 or more (it is \(stride))") }
    }

    @Option(help: "Labels left out (comma-separated, the model's own; default O). An empty value keeps every label.")
    var ignoreLabels: String?

    @Argument(help: "Texts to label.")
    var texts: [String] = []

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            let ignored = ignoreLabels.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
            let runner = TaskRunner<String, [Entity]>(
                options: options,
                task: .ner, item: { $0.text("text") },
                fromLine: { $0 },
                run: { try pipeline.entities($0, aggregation: aggregation, stride: stride, ignoreLabels: ignored) },
                describe: { text, entities in
                    ([text] + entities.map {
                        "  \(($0.entityGroup ?? $0.entity ?? "").padding(toLength: 8, withPad: " ", startingAt: 0)) \(formatScore($0.score))  \($0.start)..<\($0.end)  \($0.word)"
                    }).joined(separator: "\n")
                })
            try runner(texts)
        }
    }
}
