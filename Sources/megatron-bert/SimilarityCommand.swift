import ArgumentParser
import Foundation
import MegatronBERT

struct SimilarityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similarity",
        abstract: "Cosine similarity between the first text's sentence vector and each other text's.",
        discussion: """
        Output: one {text, similarity} per text after the first.

        Example:
          megatron-bert similarity --model ./megatron-bert-cased-345m "A man is eating." "Someone eats." "It rains."
        """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "cls, mean, max or pooler.")
    var pooling: Pooling = .mean

    @Argument(help: "The text to compare, then the texts to compare it with.")
    var texts: [String]

    func validate() throws {
        guard texts.count >= 2 else { throw ValidationError("give at least two texts") }
        guard options.input == nil else {
            throw ValidationError("similarity takes its texts as arguments; for a file, run embed --input and compare the vectors")
        }
    }

    struct Output: Encodable {
        var text: String
        var similarity: Double
    }

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            let vectors = try pipeline.embed(texts, pooling: pooling, normalize: true)
            let outputs = texts.indices.dropFirst().map { Output(text: texts[$0], similarity: Pipeline.cosine(vectors[0], vectors[$0])) }
            if options.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                Console.line(String(decoding: try encoder.encode(outputs), as: UTF8.self))
            } else {
                for output in outputs { Console.line("\(formatScore(output.similarity))  \(output.text)") }
            }
        }
    }
}
