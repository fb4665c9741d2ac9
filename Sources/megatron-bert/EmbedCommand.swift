import ArgumentParser
import Foundation
import MegatronBERT

extension Pooling: ExpressibleByArgument {}

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Sentence vectors: cls, mean, max or pooler pooling of the encoder's output (any checkpoint).",
        discussion: """
        Output per text: {"embedding": [hidden_size floats]}. Texts longer than the model's window are cut into \
        windows overlapping by --stride tokens and their vectors combined (mean: every token weighs the same; \
        max: element-wise maximum; cls, pooler: the windows' average).

        Examples:
          megatron-bert embed --model ./megatron-bert-cased-345m --normalize --json "A sentence." "Another one."
          megatron-bert embed --model M --input sentences.jsonl --json > vectors.jsonl   # lines {"text": "..."}
        """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "cls, mean, max or pooler.")
    var pooling: Pooling = .mean

    @Flag(help: "Scale every vector to unit length (L2).")
    var normalize = false

    @Option(parsing: .unconditional, help: "Tokens shared by neighbouring windows of a long text (default: an eighth of the window).")
    var stride: Int?

    func validate() throws {
        if let stride, stride < 0 { throw ValidationError("--stride must be 0 or more (it is \(stride))") }
    }

    @Argument(help: "Texts to embed.")
    var texts: [String] = []

    struct Output: Encodable {
        var embedding: [Float]
    }

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            let runner = TaskRunner<String, Output>(
                options: options,
                parse: { try $0.text("text", $1) },
                fromLine: { $0 },
                run: { try pipeline.embed($0, pooling: pooling, normalize: normalize, stride: stride).map(Output.init) },
                describe: { text, output in
                    let head = output.embedding.prefix(6).map { String(format: "%.4f", $0) }.joined(separator: ", ")
                    return "\(text)\n  [\(head), ...] (\(output.embedding.count) dims)"
                })
            try runner(texts)
        }
    }
}

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
