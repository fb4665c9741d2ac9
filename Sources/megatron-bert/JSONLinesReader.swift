import Foundation
import TensorFiles
#if canImport(Glibc)
import Glibc
#endif

/// Reads a JSON Lines file (or standard input) one object — or one plain text line — at a time, in bounded
/// memory: it holds one 1 MiB block and the current line. Blank lines are skipped; a line that is not a JSON
/// object (or not UTF-8, for text lines), or longer than `maxLineBytes`, is an error naming the file and line,
/// after which reading goes on at the next line (`--on-error record` carries on past it). Reads return what a pipe
/// holds (never waiting to fill a block), and `hasPendingInput` says whether a line can be had without waiting, so
/// a long-lived worker answers each batch its caller writes instead of waiting for more.
final class JSONLinesReader {
    let name: String
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var block = [UInt8](repeating: 0, count: 1 << 20)
    /// The last line was over `maxLineBytes`: its rest is skipped before the next line.
    private var skippingLine = false
    private var position = 0
    private var atEnd = false
    private(set) var lineNumber = 0
    static let maxLineBytes = 64 << 20

    /// Reads `path` once, as a stream (standard input for "-"; pipes, /dev/stdin and `<(…)` work too).
    init(path: String) throws {
        if path == "-" {
            handle = FileHandle.standardInput
            name = "standard input"
        } else {
            try checkReadable(path, what: "the input file")
            guard let file = FileHandle(forReadingAtPath: path) else { throw CommandError("cannot open the input file \(path)") }
            handle = file
            name = path
        }
    }

    /// The lines of a regular file, counted without parsing (for the progress bar); nil for anything that is not
    /// a regular file (a pipe or a device would be used up by counting).
    static func countLines(path: String) -> Int? {
        var info = stat()
        guard path != "-", stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
              let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        var count = 0, last: UInt8 = UInt8(ascii: "\n")
        while let block = try? file.read(upToCount: 1 << 20), !block.isEmpty {
            for byte in block where byte == UInt8(ascii: "\n") { count += 1 }
            last = block.last ?? last
        }
        return count + (last == UInt8(ascii: "\n") ? 0 : 1)
    }

    /// Whether the input is a regular file (reading it never waits for a writer).
    var isRegularFile: Bool {
        var info = stat()
        return fstat(handle.fileDescriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Whether the next line (or the end of the input) can be read without waiting for the writer: bytes are
    /// buffered, or the file descriptor is ready (always, for regular files) now or within 2 ms, so that a writer
    /// that sends a batch in pieces (line by line, or a buffer at a time) still has it read as one chunk, which is
    /// sorted by length and batched with less padding.
    var hasPendingInput: Bool {
        if position < buffer.count || atEnd { return true }
        var descriptor = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 2) != 0
    }

    /// The next object, or nil at the end of the input.
    func next() throws -> [String: JSONValue]? {
        guard let line = try nextNonBlankLine() else { return nil }
        let value: JSONValue
        do { value = try JSONValue.parse(Data(line)) } catch {
            throw CommandError("\(name):\(lineNumber): invalid JSON: \(error) (each line must be one JSON object, e.g. {\"text\": \"...\"})")
        }
        guard let object = value.object else {
            throw CommandError("\(name):\(lineNumber): not a JSON object (each line must be one, e.g. {\"text\": \"...\"})")
        }
        return object
    }

    /// The next non-blank line as text, or nil at the end of the input.
    func nextText() throws -> String? {
        guard let line = try nextNonBlankLine() else { return nil }
        guard let text = String(validating: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self) else {
            throw CommandError("\(name):\(lineNumber): not valid UTF-8")
        }
        return text
    }

    /// The next line holding more than spaces, tabs and a carriage return.
    private func nextNonBlankLine() throws -> ArraySlice<UInt8>? {
        while let line = try nextLine() {
            if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return line }
        }
        return nil
    }

    private func nextLine() throws -> ArraySlice<UInt8>? {
        if skippingLine { try skipRestOfLine() }
        var line: [UInt8] = []
        while true {
            if position == buffer.count {
                if atEnd { break }
                if try fill() == 0 {
                    atEnd = true
                    break
                }
            }
            let newline = buffer[position...].firstIndex(of: UInt8(ascii: "\n"))
            line += buffer[position..<(newline ?? buffer.count)]
            position = newline.map { $0 + 1 } ?? buffer.count
            if line.count > Self.maxLineBytes {
                // An error at once (a stream without newlines, like /dev/zero, must not keep the command reading);
                // the next read skips the rest of this line.
                lineNumber += 1
                skippingLine = newline == nil
                throw CommandError("\(name):\(lineNumber): a line longer than \(Self.maxLineBytes >> 20) MiB; split the input")
            }
            if newline != nil {
                lineNumber += 1
                return line[...]
            }
        }
        if line.isEmpty { return nil }
        lineNumber += 1
        return line[...]
    }

    /// Reads past the next newline (the rest of an over-long line).
    private func skipRestOfLine() throws {
        while true {
            if let newline = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) {
                position = newline + 1
                break
            }
            position = buffer.count
            if try atEnd || fill() == 0 {
                atEnd = true
                break
            }
        }
        skippingLine = false
    }

    /// Reads what the descriptor has (up to a block) into the buffer; 0 at the end of the input.
    private func fill() throws -> Int {
        while true {
            let count = block.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw CommandError("reading \(name) failed: \(String(cString: strerror(errno)))") }
            buffer = Array(block[0..<count])
            position = 0
            return count
        }
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// A required string field, or an error naming the line.
    func text(_ key: String, _ reader: JSONLinesReader) throws -> String {
        guard let value = self[key]?.string else {
            throw CommandError("\(reader.name):\(reader.lineNumber): needs a string \"\(key)\"")
        }
        return value
    }

    /// An optional string field (absent or null), or an error when it is something else.
    func optionalText(_ key: String, _ reader: JSONLinesReader) throws -> String? {
        guard let value = self[key], value != .null else { return nil }
        guard let string = value.string else { throw CommandError("\(reader.name):\(reader.lineNumber): \"\(key)\" must be a string") }
        return string
    }
}
