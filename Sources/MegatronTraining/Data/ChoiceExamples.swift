import Foundation
import TensorFiles

/// A multiple-choice example: a prompt (SWAG's context, or RACE's article and question), its candidate endings, and
/// the index of the right one.
public struct ChoiceExample: Sendable, Equatable {
    public var prompt: String
    public var choices: [String]
    public var label: Int
    /// Where it is, for messages: `path:line`.
    public var location: String

    public init(prompt: String, choices: [String], label: Int, location: String) {
        self.prompt = prompt
        self.choices = choices
        self.label = label
        self.location = location
    }
}

/// Reads multiple-choice examples from JSON Lines, one `{"prompt": "...", "choices": ["...", ...], "label": 1}` per
/// line (column names as given). The label is the right choice's index from 0, or its letter ("A" the first, as RACE
/// writes answers). Every example has as many choices as the first (a batch is (B, C, S)).
///
/// ```swift
/// let examples = try ChoiceExamples.read("swag-train.jsonl")
/// examples[0].choices.count  // 4
/// ```
public enum ChoiceExamples {
    public struct Columns: Sendable {
        public var prompt = "prompt", choices = "choices", label = "label"
        public init(prompt: String = "prompt", choices: String = "choices", label: String = "label") {
            (self.prompt, self.choices, self.label) = (prompt, choices, label)
        }
    }

    public static func read(_ path: String, columns: Columns = Columns(), choices expected: Int? = nil) throws -> [ChoiceExample] {
        var count = expected
        let examples = try DataFile.jsonObjects(try DataFile.text(path), path: path).map { object, location -> ChoiceExample in
            guard let prompt = object[columns.prompt]?.string else { throw TrainingError("\(location): no \"\(columns.prompt)\" string (the prompt)") }
            guard let list = object[columns.choices]?.array, !list.isEmpty else {
                throw TrainingError("\(location): no \"\(columns.choices)\" list of choices")
            }
            let choices = try list.map { choice -> String in
                guard let text = choice.string else { throw TrainingError("\(location): every choice must be a string") }
                return text
            }
            let wanted = count ?? choices.count
            count = wanted
            guard choices.count == wanted else {
                throw TrainingError("\(location): \(choices.count) choices where \(expected == nil ? "the first example has" : "the training data have") \(wanted): every example needs the same number")
            }
            let label: Int
            if let index = object[columns.label]?.int {
                label = index
            } else if let letter = object[columns.label]?.string, letter.count == 1, let ascii = letter.uppercased().unicodeScalars.first?.value,
                      (65...90).contains(ascii) {
                label = Int(ascii) - 65
            } else {
                throw TrainingError("\(location): the \"\(columns.label)\" must be the right choice's index from 0 or its letter (A, B, ...)")
            }
            guard choices.indices.contains(label) else {
                throw TrainingError("\(location): label \(label) is not one of the \(choices.count) choices (0 to \(choices.count - 1))")
            }
            return ChoiceExample(prompt: prompt, choices: choices, label: label, location: location)
        }
        guard !examples.isEmpty else { throw TrainingError("\(path) holds no examples") }
        return examples
    }
}
