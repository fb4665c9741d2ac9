import ArgumentParser
import Foundation
import MegatronBERT
import TensorFiles

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

    /// `MEGATRON_BERT_PREPARE_AHEAD`: 1 or 0, or unset for `default`.
    func prepareAhead(default value: Bool) throws -> Bool {
        switch Settings.current[.prepareAhead] {
        case nil: return value
        case "1": return true
        case "0": return false
        case let other?: throw CommandError("MEGATRON_BERT_PREPARE_AHEAD=\(other) is not a choice: use 1 or 0 (or leave it unset)")
        }
    }

    struct Output: Encodable, JSONBody {
        var embedding: [Float]

        func appendJSON(to out: inout [UInt8]) throws {
            out.append(contentsOf: #"{"embedding":"#.utf8)
            try JSONNumbers.appendArray(embedding, to: &out)
            out.append(UInt8(ascii: "}"))
        }
    }

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            let task = try EmbeddingTask(pipeline: pipeline, pooling: pooling, normalize: normalize, stride: stride)
            // On a GPU the next chunk is tokenized while this one runs; on the CPU both would share the same cores
            // (measured: no faster), unless MEGATRON_BERT_PREPARE_AHEAD=1 asks for it.
            let ahead = try prepareAhead(default: !pipeline.model.backend.capabilities.runsOnHost)
            let stages = !ahead ? nil : TaskRunner<String, Output>.Stages(
                prepare: { try task.prepare($0) },
                execute: { prepared in
                    guard let (rows, plan) = prepared as? ([ModelRow], RowOwners<String>) else {
                        throw CommandError("internal error: a prepared chunk of another kind")
                    }
                    return try pipeline.execute(task, rows: rows, plan: plan).map(Output.init)
                })
            let runner = TaskRunner<String, Output>(
                options: options,
                task: .embed, item: { $0.text("text") },
                fromLine: { $0 },
                run: { try pipeline.run(task, $0).map(Output.init) },
                describe: { text, output in
                    let head = output.embedding.prefix(6).map { String(format: "%.4f", $0) }.joined(separator: ", ")
                    return "\(text)\n  [\(head), ...] (\(output.embedding.count) dims)"
                },
                // Enough sentences for whole packed passes on a GPU (16,384 tokens each); a pipe's caller is still
                // answered per batch it writes.
                chunkSize: max(2048, min(options.batchSize, 1 << 16) * 32),
                stages: stages)
            try runner(texts)
        }
    }
}
