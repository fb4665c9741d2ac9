import Foundation
import TensorFiles

/// Reading request bodies: JSON parsed by our own parser (clear messages, bounded depth), fields checked one by one,
/// every mistake a 400 / 422 `APIError` that names the field.
struct Body {
    let json: [String: JSONValue]

    init(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { throw APIError.badRequest("the request has no body: send a JSON object, e.g. {\"inputs\": \"...\"}") }
        let value: JSONValue
        do { value = try JSONValue.parse(Data(bytes)) } catch {
            throw APIError.badRequest("the body is not valid JSON: \(error)")
        }
        guard let object = value.object else {
            throw APIError.badRequest("the body must be a JSON object, e.g. {\"inputs\": \"...\"}, not \(value)")
        }
        json = object
    }

    /// A body already parsed (one of Vertex AI's instances).
    init(object: [String: JSONValue]) { json = object }

    /// `inputs`-style texts: a string (not a batch) or a non-empty list of strings (a batch).
    func texts(_ key: String) throws -> (texts: [String], batch: Bool) {
        guard let value = json[key], value != .null else { throw APIError.badRequest("missing field `\(key)`") }
        if let text = value.string { return ([text], false) }
        guard let list = value.array else {
            throw APIError.badRequest("`\(key)` must be a string or a list of strings, not \(value)")
        }
        guard !list.isEmpty else { throw APIError(.badRequest, .empty, "`\(key)` cannot be empty") }
        let texts = list.compactMap(\.string)
        guard texts.count == list.count else {
            throw APIError.badRequest("`\(key)` must be a string or a list of strings; element \(list.firstIndex { $0.string == nil } ?? 0) is \(list.first { $0.string == nil } ?? .null)")
        }
        return (texts, true)
    }

    /// The inputs of the embedding routes: texts (as `texts`), or token ids — a list of ids (one input) or a list of
    /// such lists (a batch), as TEI takes them.
    func textsOrIDs(_ key: String) throws -> (texts: [String]?, ids: [[Int]]?, batch: Bool) {
        if let list = json[key]?.array, let first = list.first, first.string == nil {
            func ids(_ values: [JSONValue]) throws -> [Int] {
                try values.map { value in
                    guard let id = value.int else {
                        throw APIError.badRequest("`\(key)` must be a string, a list of strings, a list of token ids or a list of such lists; found \(value)")
                    }
                    return id
                }
            }
            if first.array != nil {
                return (nil, try list.map { item in
                    guard let inner = item.array, !inner.isEmpty else { throw APIError(.badRequest, .empty, "`\(key)` holds an empty list of token ids") }
                    return try ids(inner)
                }, true)
            }
            return (nil, [try ids(list)], false)
        }
        let (texts, batch) = try self.texts(key)
        return (texts, nil, batch)
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = json[key], value != .null else { return fallback }
        guard let flag = value.bool else { throw APIError.badRequest("`\(key)` must be true or false, not \(value)") }
        return flag
    }

    func int(_ key: String) throws -> Int? {
        guard let value = json[key], value != .null else { return nil }
        guard let number = value.int else { throw APIError.badRequest("`\(key)` must be an integer, not \(value)") }
        return number
    }

    func string(_ key: String) throws -> String? {
        guard let value = json[key], value != .null else { return nil }
        guard let text = value.string else { throw APIError.badRequest("`\(key)` must be a string, not \(value)") }
        return text
    }

    /// Hugging Face Inference API `parameters` (an object, or absent).
    func parameters() throws -> Body {
        guard let value = json["parameters"], value != .null else { return Body(json: [:]) }
        guard let object = value.object else { throw APIError.badRequest("`parameters` must be an object, not \(value)") }
        return Body(json: object)
    }

    private init(json: [String: JSONValue]) { self.json = json }
}
