import Foundation
import TensorFiles

/// A question about a context with its answers (extractive QA's training data): each answer a span of the context,
/// `start` its first character (Unicode scalars, as Python counts them). No answers: an unanswerable question
/// (SQuAD v2.0).
public struct QuestionExample: Sendable, Equatable {
    public struct Answer: Sendable, Equatable {
        public var text: String
        public var start: Int
        public init(text: String, start: Int) {
            self.text = text
            self.start = start
        }
    }
    public var id: String
    public var question: String
    public var context: String
    public var answers: [Answer]
    /// Where it is, for messages: `path:line` (JSON Lines) or `path` and the question's id (SQuAD JSON).
    public var location: String

    public init(id: String, question: String, context: String, answers: [Answer], location: String) {
        self.id = id
        self.question = question
        self.context = context
        self.answers = answers
        self.location = location
    }
}

/// Reads extractive-QA examples, in one of two formats:
/// - **SQuAD JSON** (v1.1 and v2.0): `{"data": [{"paragraphs": [{"context", "qas": [{"id", "question",
///   "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}`; an impossible question (v2.0) has no answers
///   (its `plausible_answers` are not answers).
/// - **JSON Lines** `{"id", "question", "context", "answers": {"text": [...], "answer_start": [...]}}` (the Hugging Face
///   datasets' form; `id` optional), one question a line.
///
/// Every answer must be non-empty and found in the context at its `answer_start`.
///
/// ```swift
/// let examples = try QuestionAnswers.read("train-v2.0.json")
/// examples[0].answers  // [Answer(text: "in the late 1990s", start: 269)]
/// ```
public enum QuestionAnswers {
    public static func read(_ path: String) throws -> [QuestionExample] {
        let text = try DataFile.text(path)
        let trimmed = text.drop { $0.isWhitespace }
        let examples = path.lowercased().hasSuffix(".jsonl") || !trimmed.hasPrefix("{") || isJSONLines(trimmed)
            ? try jsonLines(text, path: path) : try squad(text, path: path)
        guard !examples.isEmpty else { throw TrainingError("\(path) holds no questions") }
        return examples
    }

    /// Whether text that starts with "{" is JSON Lines: its first line a whole object with a "question".
    static func isJSONLines(_ text: Substring) -> Bool {
        guard let line = DataFile.lines(String(text)).first, let object = try? JSONValue.parse(Data(line.utf8)).object else { return false }
        return object["question"] != nil
    }

    static func squad(_ text: String, path: String) throws -> [QuestionExample] {
        let root: JSONValue
        do {
            root = try JSONValue.parse(Data(text.utf8))
        } catch {
            throw TrainingError("\(path): not valid JSON: \(error)")
        }
        guard let articles = root.object?["data"]?.array else {
            throw TrainingError("\(path): not SQuAD JSON (an object with a \"data\" list of articles) nor JSON Lines ({\"question\", \"context\", \"answers\"} per line)")
        }
        var examples: [QuestionExample] = []
        for (a, article) in articles.enumerated() {
            guard let paragraphs = article.object?["paragraphs"]?.array else { throw TrainingError("\(path): data[\(a)] has no \"paragraphs\" list") }
            for (p, paragraph) in paragraphs.enumerated() {
                let place = "\(path): data[\(a)].paragraphs[\(p)]"
                guard let context = paragraph.object?["context"]?.string, let questions = paragraph.object?["qas"]?.array else {
                    throw TrainingError("\(place) needs a \"context\" string and a \"qas\" list")
                }
                for (q, entry) in questions.enumerated() {
                    guard let qa = entry.object else { throw TrainingError("\(place).qas[\(q)] is not an object") }
                    let id = qa["id"]?.string ?? qa["id"]?.int.map(String.init) ?? "\(a).\(p).\(q)"
                    let location = "\(path): question \(id) (data[\(a)].paragraphs[\(p)].qas[\(q)])"
                    guard let question = qa["question"]?.string else { throw TrainingError("\(location) has no \"question\" string") }
                    var answers: [QuestionExample.Answer] = []
                    if qa["is_impossible"]?.bool != true {
                        guard let list = qa["answers"]?.array else { throw TrainingError("\(location) has no \"answers\" list") }
                        answers = try list.map { answer in
                            guard let text = answer.object?["text"]?.string, let start = answer.object?["answer_start"]?.int else {
                                throw TrainingError("\(location): an answer needs \"text\" (a string) and \"answer_start\" (an integer)")
                            }
                            return QuestionExample.Answer(text: text, start: start)
                        }
                    }
                    examples.append(try checked(QuestionExample(id: id, question: question, context: context, answers: answers,
                                                                location: location)))
                }
            }
        }
        return examples
    }

    static func jsonLines(_ text: String, path: String) throws -> [QuestionExample] {
        try DataFile.jsonObjects(text, path: path).map { object, location in
            guard let question = object["question"]?.string, let context = object["context"]?.string else {
                throw TrainingError("\(location): needs \"question\" and \"context\" strings")
            }
            let id = object["id"]?.string ?? object["id"]?.int.map(String.init) ?? location
            guard let answers = object["answers"]?.object, let texts = answers["text"]?.array, let starts = answers["answer_start"]?.array,
                  texts.count == starts.count else {
                throw TrainingError("\(location): \"answers\" must be {\"text\": [...], \"answer_start\": [...]}, lists of one length (empty for an unanswerable question)")
            }
            let list = try zip(texts, starts).map { text, start in
                guard let text = text.string, let start = start.int else {
                    throw TrainingError("\(location): answer texts are strings and answer_start integers")
                }
                return QuestionExample.Answer(text: text, start: start)
            }
            return try checked(QuestionExample(id: id, question: question, context: context, answers: list, location: location))
        }
    }

    /// The example, once every answer is non-empty and sits at its `start` in the context.
    static func checked(_ example: QuestionExample) throws -> QuestionExample {
        guard !example.question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, !example.context.isEmpty else {
            throw TrainingError("\(example.location): the question and the context must not be empty")
        }
        let scalars = Array(example.context.unicodeScalars)
        for answer in example.answers {
            let length = answer.text.unicodeScalars.count
            guard length > 0 else { throw TrainingError("\(example.location): an answer's text is empty (an unanswerable question has no answers)") }
            guard answer.start >= 0, answer.start + length <= scalars.count else {
                throw TrainingError("\(example.location): the answer \"\(answer.text)\" at answer_start \(answer.start) runs past the context's \(scalars.count) characters")
            }
            let found = String(String.UnicodeScalarView(scalars[answer.start..<(answer.start + length)]))
            guard found.unicodeScalars.elementsEqual(answer.text.unicodeScalars) else {
                throw TrainingError("\(example.location): the answer \"\(answer.text)\" is not at answer_start \(answer.start): the context has \"\(found)\" there (answer_start counts characters from 0)")
            }
        }
        return example
    }
}
