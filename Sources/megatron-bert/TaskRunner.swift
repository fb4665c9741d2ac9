import ArgumentParser
import Foundation
import MegatronBERT
import TensorFiles

/// Runs a task over its inputs — TEXT arguments, a JSON Lines file (`--input`), or plain lines on standard
/// input — in chunks of a few hundred (memory stays constant however long the input), writing each result in
/// input order as soon as its chunk is done: JSON (an array for arguments, JSON Lines for streams) or a
/// readable table.
struct TaskRunner<Item, Output: Encodable> {
    let options: ModelOptions
    /// The task: its descriptor says which fields a JSON Lines object holds.
    let task: TaskDescriptor
    /// The item of one input's fields (read and checked by `task`).
    let item: (InputFields) -> Item
    /// Makes an item of one plain line of standard input; nil when the task needs structured input.
    var fromLine: ((String) -> Item)?
    /// Runs the task on a chunk of items.
    let run: ([Item]) throws -> [Output]
    /// The readable form of one result.
    let describe: (Item, Output) -> String
    /// Entries per chunk of a stream (default: 32 batches).
    var chunkSize: Int? = nil
    /// The task cut in two where a GPU can overlap it (nil: `run` whole): with a file as input, the next chunk is read
    /// and `prepare`d (tokenized, on the CPU) while `execute` runs this one (on the GPU); `run` still pins a failure
    /// to its line.
    var stages: Stages? = nil

    /// `prepare`'s result is opaque to the runner; `execute` takes it back.
    struct Stages {
        let prepare: ([Item]) throws -> Any
        let execute: (Any) throws -> [Output]
    }

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
                do { return Entry(id: id, line: reader.lineNumber, item: .success(item(try read(object, reader)))) } catch {
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

    /// One JSON Lines object's fields, as the task's descriptor reads them; a missing or mistyped field is an error
    /// naming the line.
    func read(_ object: [String: JSONValue], _ reader: JSONLinesReader) throws -> InputFields {
        do { return try task.read(object) } catch let error as TaskDescriptor.FieldError {
            let field = error.field, at = "\(reader.name):\(reader.lineNumber)"
            switch (field.kind, field.required) {
            case (.texts, _): throw CommandError("\(at): needs \"\(field.name)\": a non-empty array of strings")
            case (.text, true): throw CommandError("\(at): needs a string \"\(field.name)\"")
            case (.text, false): throw CommandError("\(at): \"\(field.name)\" must be a string")
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
    /// stream goes on; else the results before it are written and the command stops, naming the line. A chunk's lines
    /// are formatted on every core and written while the next chunk runs (`ChunkWriter`).
    func stream(_ reader: JSONLinesReader, total: Int?, next: (JSONLinesReader) throws -> Entry?) throws {
        let chunkSize = self.chunkSize ?? max(64, min(options.batchSize, 1 << 16) * 32)
        let progress = ProgressBar(total: total, unit: "inputs", quiet: options.quiet)
        let record = options.onError == .record
        let writer = ChunkWriter()
        let times = StageTimes.shared
        defer { if times.enabled { Console.error("timings: " + times.report + "\n") } }
        func readChunk() -> [Entry] {
            var chunk: [Entry] = []
            times.measure("read") {
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
            }
            return chunk
        }
        // Reading ahead never waits on a file; on a pipe it could wait for input its caller sends only after our answer.
        let ahead = reader.isRegularFile ? stages.map(PreparedAhead.init) : nil
        var chunk = readChunk(), prepared = ahead?.start(chunk)
        while !chunk.isEmpty {
            let following = ahead != nil && !stops(chunk, record: record) ? readChunk() : nil
            let upcoming = following.flatMap { ahead?.start($0) }
            let results = Array(zip(chunk, outcomes(chunk, prepared: prepared?.wait(), name: reader.name)))
            try times.measure("wait for output") { try writer.wait() }  // the previous chunk's lines are out
            if !record, let stop = results.firstIndex(where: { if case .failure = $0.1 { true } else { false } }) {
                for line in try lines(results[..<stop]) { write(line) }
                Console.flush()
                if case .failure(let error) = results[stop].1 { throw error }
            }
            writer.submit {
                try times.measure("format and write (overlapped)") {
                    for line in try lines(results[...]) { write(line) }
                    Console.flush()
                }
                progress.advance(by: results.count)
            }
            chunk = following ?? readChunk()
            prepared = following == nil ? ahead?.start(chunk) : upcoming
        }
        try writer.wait()
        progress.finish()
    }

    /// Whether a chunk ends the stream: it holds a bad line and bad lines stop it.
    func stops(_ chunk: [Entry], record: Bool) -> Bool {
        !record && chunk.contains { if case .failure = $0.item { true } else { false } }
    }

    /// Chunks prepared on a queue of their own (`Stages.prepare`) while the previous chunk executes.
    final class PreparedAhead: @unchecked Sendable {
        let stages: Stages
        private let queue = DispatchQueue(label: "megatron-bert.prepare")

        init(_ stages: Stages) { self.stages = stages }

        /// Starts preparing a chunk whose lines all read well (nil otherwise: `outcomes` then runs it whole).
        func start(_ chunk: [Entry]) -> Pending? {
            let items = chunk.compactMap { try? $0.item.get() }
            guard !items.isEmpty, items.count == chunk.count else { return nil }
            let pending = Pending()
            queue.async(group: pending.group) {
                let started = DispatchTime.now().uptimeNanoseconds
                do { pending.value = try self.stages.prepare(items) } catch { pending.value = nil }
                StageTimes.shared.add("prepare (overlapped)", Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            }
            return pending
        }

        /// A chunk being prepared: `wait` gives `prepare`'s result, nil when it threw.
        final class Pending: @unchecked Sendable {
            let group = DispatchGroup()
            var value: Any?
            func wait() -> Any? {
                group.wait()
                return value
            }
        }
    }

    /// The output lines of a chunk's results, formatted on every core (a 1,024-float embedding takes ~70 µs).
    func lines(_ results: ArraySlice<(Entry, Result<Output, Error>)>) throws -> [String] {
        let base = results.startIndex
        let lines = System.concurrentMap(results.count) { i in Result { try line(results[base + i].0, results[base + i].1) } }
        return try lines.map { try $0.get() }
    }

    /// One result's output line: its JSON line or readable form, or the error line of a bad input (`record`).
    func line(_ entry: Entry, _ outcome: Result<Output, Error>) throws -> String {
        switch outcome {
        case .success(let output):
            return options.json ? try jsonLine(output, id: entry.id) : describe(try entry.item.get(), output)
        case .failure(let error):
            let message = megatron_bert.describe(error)
            return options.json ? try errorLine(message, id: entry.id) : "error: \(message)"
        }
    }

    /// Each entry's result: the chunk's readable items run together; when that fails, one by one, so that the failure
    /// is pinned to its line ("FILE:LINE: why") and the other items still get their results.
    func outcomes(_ chunk: [Entry], prepared: Any? = nil, name: String) -> [Result<Output, Error>] {
        // A chunk prepared ahead (every line read well): executed whole; on any failure, the way below.
        if let prepared, let stages, let outputs = try? stages.execute(prepared), outputs.count == chunk.count {
            return outputs.map { .success($0) }
        }
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
        let body: String
        if let output = output as? any JSONBody {
            var bytes: [UInt8] = []
            try output.appendJSON(to: &bytes)
            body = String(decoding: bytes, as: UTF8.self)
        } else {
            body = String(decoding: try encoder.encode(output), as: UTF8.self)
        }
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

/// An output that writes its own JSON object, byte for byte what `JSONEncoder` with sorted keys writes, faster (long
/// float arrays: `JSONNumbers`).
protocol JSONBody {
    func appendJSON(to out: inout [UInt8]) throws
}

/// One chunk's output written on a queue of its own while the next chunk runs; `wait` returns when it is out (and
/// throws what writing it threw).
final class ChunkWriter: @unchecked Sendable {
    private let queue = DispatchQueue(label: "megatron-bert.output")
    private let group = DispatchGroup()
    private var failure: Error?

    func submit(_ work: @escaping () throws -> Void) {
        queue.async(group: group) {
            do { try work() } catch { self.failure = error }
        }
    }

    func wait() throws {
        group.wait()
        if let failure { throw failure }
    }
}

/// A task parameter's bound (`TaskDescriptor.Parameter.violation`) checked on its flag: "--top-k must be at least 1
/// (it is 0)", a usage error.
func checkFlag(_ task: TaskDescriptor, _ name: String, _ value: Int) throws {
    let parameter = try task.require(name)
    if let violation = parameter.violation(value) { throw ValidationError("\(parameter.flag ?? name) \(violation) (it is \(value))") }
}

/// A score as the tables show it.
func formatScore(_ score: Double) -> String { String(format: "%.4f", score) }
