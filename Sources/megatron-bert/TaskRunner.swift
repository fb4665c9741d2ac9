import Foundation
import MegatronBERT
import TensorFiles

/// Runs a task over its inputs — TEXT arguments, a JSON Lines file (`--input`), or plain lines on standard
/// input — in chunks of a few hundred (memory stays constant however long the input), writing each result in
/// input order as soon as its chunk is done: JSON (an array for arguments, JSON Lines for streams) or a
/// readable table.
struct TaskRunner<Item, Output: Encodable> {
    let options: ModelOptions
    /// Reads one JSON Lines object as an item (errors name the line).
    let parse: ([String: JSONValue], JSONLinesReader) throws -> Item
    /// Makes an item of one plain line of standard input; nil when the task needs structured input.
    var fromLine: ((String) -> Item)?
    /// Runs the task on a chunk of items.
    let run: ([Item]) throws -> [Output]
    /// The readable form of one result.
    let describe: (Item, Output) -> String

    let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    func write(_ text: String) { Console.line(text) }

    func callAsFunction(_ arguments: [Item]) throws {
        if let input = options.input {
            let reader = try JSONLinesReader(path: input)
            let total = ProgressBar.shown(quiet: options.quiet) ? JSONLinesReader.countLines(path: input) : nil
            try stream(total: total) { try reader.next().map { try parse($0, reader) } }
        } else if !arguments.isEmpty {
            let outputs = try run(arguments)
            if options.json {
                encoder.outputFormatting.insert(.prettyPrinted)
                write(String(decoding: try encoder.encode(outputs), as: UTF8.self))
            } else {
                for (item, output) in zip(arguments, outputs) { write(describe(item, output)) }
            }
        } else {
            guard let fromLine, isatty(STDIN_FILENO) == 0 else {
                throw CommandError(fromLine == nil
                    ? "no input: give the texts as arguments or --input FILE.jsonl"
                    : "no input: give TEXT arguments, --input FILE.jsonl, or lines of text on standard input")
            }
            let reader = try JSONLinesReader(path: "-")
            try stream(total: nil) { try reader.nextText().map(fromLine) }
        }
    }

    /// Items from `next` in chunks; each chunk's results written (JSON Lines or tables) before the next is read.
    func stream(total: Int?, next: () throws -> Item?) throws {
        let chunkSize = max(64, min(options.batchSize, 1 << 16) * 32)
        let progress = ProgressBar(total: total, unit: "inputs", quiet: options.quiet)
        while true {
            var chunk: [Item] = []
            while chunk.count < chunkSize, let item = try next() { chunk.append(item) }
            if chunk.isEmpty { break }
            for (item, output) in zip(chunk, try run(chunk)) {
                write(options.json ? String(decoding: try encoder.encode(output), as: UTF8.self) : describe(item, output))
            }
            Console.flush()
            progress.advance(by: chunk.count)
        }
        progress.finish()
    }
}

/// A score as the tables show it.
func formatScore(_ score: Double) -> String { String(format: "%.4f", score) }
