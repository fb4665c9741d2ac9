import Foundation
import TensorFiles

/// What the training data readers share: a file read whole as UTF-8 text (bounded), and JSON Lines as objects with
/// their `path:line`.
enum DataFile {
    /// At most this many bytes are read from one file (larger files: split them).
    static let sizeLimit = 4 << 30

    /// The file's text.
    /// - Throws: `TrainingError` for a file that is missing, unreadable, over `sizeLimit` or not UTF-8.
    static func text(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw TrainingError("cannot read \(path): no such file, or not readable") }
        defer { try? handle.close() }
        let data = try handle.readToEnd() ?? Data()
        guard data.count <= sizeLimit else { throw TrainingError("\(path) is over \(sizeLimit >> 30) GB: split it") }
        guard let text = String(data: data, encoding: .utf8) else { throw TrainingError("\(path) is not UTF-8 text") }
        return text
    }

    /// The text's lines, ended by "\n" or "\r\n" (one Character in Swift, which a split at "\n" alone would miss).
    static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }

    /// Each non-blank line of JSON Lines text as an object, with its location.
    /// - Throws: `TrainingError` naming the line for one that is not valid JSON or not an object.
    static func jsonObjects(_ text: String, path: String) throws -> [(object: [String: JSONValue], location: String)] {
        var objects: [(object: [String: JSONValue], location: String)] = []
        for (index, line) in lines(text).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { continue }
            let location = "\(path):\(index + 1)"
            let parsed: JSONValue
            do {
                parsed = try JSONValue.parse(Data(trimmed.utf8))
            } catch {
                throw TrainingError("\(location): not valid JSON: \(error)")
            }
            guard let object = parsed.object else { throw TrainingError("\(location): not a JSON object") }
            objects.append((object, location))
        }
        return objects
    }
}
