import ArgumentParser
import Foundation
import MegatronBERT

struct NextSentenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nsp",
        abstract: "Next-sentence prediction: the probability that text B follows text A (pre-training checkpoints).",
        discussion: """
        Output per pair: is_next_probability (softmax index 0 of the binary head) and is_next (probability ≥ 0.5).

        Examples:
          megatron-bert nsp --model ./megatron-bert-cased-345m "It rained all day." "The streets were wet."
          megatron-bert nsp --model M --input pairs.jsonl --json      # lines {"text": "...", "text_pair": "..."}
        """
    )

    @OptionGroup var options: ModelOptions

    @Argument(help: "TEXT_A TEXT_B.")
    var texts: [String] = []

    func validate() throws {
        guard texts.isEmpty || texts.count == 2 else { throw ValidationError("give two texts, A and B (or --input FILE.jsonl)") }
    }

    struct Output: Encodable {
        var is_next_probability: Double
        var is_next: Bool
    }

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            let runner = TaskRunner<(String, String), Output>(
                options: options,
                task: .nextSentence, item: { ($0.text("text"), $0.text("text_pair")) },
                run: { try pipeline.nextSentence($0).map { Output(is_next_probability: $0.isNextProbability, is_next: $0.isNext) } },
                describe: { pair, output in
                    "\(output.is_next ? "is next" : "not next")  p(is next) = \(formatScore(output.is_next_probability))  A: \(pair.0)  B: \(pair.1)"
                })
            try runner(texts.count == 2 ? [(texts[0], texts[1])] : [])
        }
    }
}
