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
            try stream(reader, total: total) { reader in
                guard let object = try reader.next() else { return nil }
                let id = object["id"]
                do { return Entry(id: id, line: reader.lineNumber, item: .success(try parse(object, reader))) } catch {
                    return Entry(id: id, line: reader.lineNumber, item: .failure(error))
                }
            }
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
            try stream(reader, total: nil) { reader in
                try reader.nextText().map { Entry(id: nil, line: reader.lineNumber, item: .success(fromLine($0))) }
            }
        }
    }

    /// One input of a stream: the id its output line carries, its line number, and the item or why the line is bad.
    struct Entry {
        /// The line's "id" member (any JSON value), nil when it has none.
        var id: JSONValue?
        var line: Int
        var item: Result<Item, Error>
    }

    /// Entries from `next` in chunks; each chunk's results written (JSON Lines or tables) and flushed before the next
    /// is read. A chunk ends at `chunkSize` entries, or sooner when the reader has nothing more without waiting, so a
    /// worker answers every batch its caller writes. With `--on-error record` a bad line becomes an error line and the
    /// stream goes on; else the results before it are written and the command stops, naming the line.
    func stream(_ reader: JSONLinesReader, total: Int?, next: (JSONLinesReader) throws -> Entry?) throws {
        let chunkSize = max(64, min(options.batchSize, 1 << 16) * 32)
        let progress = ProgressBar(total: total, unit: "inputs", quiet: options.quiet)
        let record = options.onError == .record
        while true {
            var chunk: [Entry] = []
            while chunk.count < chunkSize, chunk.isEmpty || reader.hasPendingInput {
                let entry: Entry?
                do { entry = try next(reader) } catch {
                    // An unreadable line (invalid JSON or UTF-8, over-long): no id to copy.
                    entry = Entry(id: nil, line: reader.lineNumber, item: .failure(error))
                }
                guard let entry else { break }
                chunk.append(entry)
                if !record, case .failure = entry.item { break }
            }
            if chunk.isEmpty { break }
            for (entry, outcome) in zip(chunk, outcomes(chunk, name: reader.name)) {
                switch outcome {
                case .success(let output):
                    write(options.json ? try jsonLine(output, id: entry.id) : describe(try entry.item.get(), output))
                case .failure(let error) where record:
                    let message = megatron_bert.describe(error)
                    write(options.json ? try errorLine(message, id: entry.id) : "error: \(message)")
                case .failure(let error):
                    Console.flush()
                    throw error
                }
            }
            Console.flush()
            progress.advance(by: chunk.count)
        }
        progress.finish()
    }

    /// Each entry's result: the chunk's readable items run together; when that fails, one by one, so that the failure
    /// is pinned to its line ("FILE:LINE: why") and the other items still get their results.
    func outcomes(_ chunk: [Entry], name: String) -> [Result<Output, Error>] {
        var outcomes: [Result<Output, Error>?] = chunk.map { entry in
            if case .failure(let error) = entry.item { return .failure(error) }
            return nil
        }
        let ready = chunk.indices.compactMap { i in (try? chunk[i].item.get()).map { (index: i, item: $0) } }
        func located(_ error: Error, _ index: Int) -> Error {
            CommandError("\(name):\(chunk[index].line): \(megatron_bert.describe(error))")
        }
        do {
            for (entry, output) in zip(ready, try run(ready.map(\.item))) { outcomes[entry.index] = .success(output) }
        } catch {
            for entry in ready {
                do {
                    guard let output = try run([entry.item]).first else { throw CommandError("internal error: no result") }
                    outcomes[entry.index] = .success(output)
                } catch {
                    outcomes[entry.index] = .failure(located(error, entry.index))
                }
            }
        }
        return outcomes.map { $0 ?? .failure(CommandError("internal error: no result")) }
    }

    /// One JSON Lines result; with an id, the id joins an object result as "id", and wraps any other result as
    /// {"id": …, "result": …}.
    func jsonLine(_ output: Output, id: JSONValue?) throws -> String {
        let body = String(decoding: try encoder.encode(output), as: UTF8.self)
        guard let id else { return body }
        let idText = String(decoding: try encoder.encode(id), as: UTF8.self)
        guard body.hasPrefix("{") else { return "{\"id\":\(idText),\"result\":\(body)}" }
        let members = body.dropFirst()
        return "{\"id\":\(idText)" + (members == "}" ? "}" : "," + members)
    }

    /// The line that stands for a bad input under `--on-error record`: {"id": …, "error": "why"} (no id when the
    /// line had none, or could not be read).
    func errorLine(_ message: String, id: JSONValue?) throws -> String {
        let text = String(decoding: try encoder.encode(message), as: UTF8.self)
        guard let id else { return "{\"error\":\(text)}" }
        return "{\"error\":\(text),\"id\":\(String(decoding: try encoder.encode(id), as: UTF8.self))}"
    }
}

/// A score as the tables show it.
func formatScore(_ score: Double) -> String { String(format: "%.4f", score) }
