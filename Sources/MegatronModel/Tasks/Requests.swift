/// The inputs of the tasks, as values a server or a worker decodes from JSON (Hugging Face's field names, the
/// ones the JSON Lines input of the command line uses) and hands to a task.
///
/// ```swift
/// let input = try JSONDecoder().decode(TextInput.self, from: Data(#"{"text": "It rained.", "text_pair": "It was wet."}"#.utf8))
/// let p = try NextSentenceTask(pipeline: pipeline)   // then prepare([input]) …
/// ```
public struct TextInput: Sendable, Codable, Equatable {
    public var text: String
    /// The second text of a pair (next-sentence prediction, classification of pairs).
    public var textPair: String?

    public init(text: String, textPair: String? = nil) {
        self.text = text
        self.textPair = textPair
    }

    enum CodingKeys: String, CodingKey { case text, textPair = "text_pair" }
}

/// A question and the context that may answer it.
public struct QuestionInput: Sendable, Codable, Equatable {
    public var question: String
    public var context: String

    public init(question: String, context: String) {
        self.question = question
        self.context = context
    }
}

/// A prompt and its candidate endings (multiple choice).
public struct ChoiceInput: Sendable, Codable, Equatable {
    public var prompt: String
    public var choices: [String]

    public init(prompt: String, choices: [String]) {
        self.prompt = prompt
        self.choices = choices
    }
}
