import Foundation
import MegatronBERT
import TensorFiles

/// The task routes: Hugging Face Inference API bodies (`{"inputs": …, "parameters": {…}}`) for ours, TEI's bodies for
/// `/predict`, `/rerank` and `/similarity`. Each runs a `ModelTask` with its rows through the shared queue.
extension Server {
    /// prepare → the queue → finish, noting tokenization time and sizes.
    func run<Task: ModelTask>(_ task: Task, _ inputs: [Task.Input], characters: Int, _ timings: inout Timings) async throws -> [Task.Output] {
        let started = ContinuousClock.now
        let (rows, plan) = try task.prepare(inputs)
        timings.tokenization += ContinuousClock.now - started
        timings.tokens += rows.reduce(0) { $0 + $1.encodings.reduce(0) { $0 + $1.count } }
        timings.characters += characters
        return try task.finish(try await outputs(rows, work: task.work, &timings), plan: plan)
    }

    /// `inputs` as objects holding the task's fields (`{"question", "context"}`), one or a list, each read by the
    /// task's descriptor.
    func inputObjects(_ body: Body, task: TaskDescriptor) throws -> (objects: [InputFields], batch: Bool) {
        guard let value = body.json["inputs"], value != .null else { throw APIError.badRequest("missing field `inputs`") }
        let shape = "{" + task.fields.map { "\"\($0.name)\": …" }.joined(separator: ", ") + "}"
        let (items, batch): ([JSONValue], Bool) = value.array.map { ($0, true) } ?? ([value], false)
        guard !items.isEmpty else { throw APIError(.badRequest, .empty, "`inputs` cannot be empty") }
        try checkBatchSize(items.count)
        let objects = try items.map { item -> InputFields in
            guard let object = item.object else { throw APIError.badRequest("`inputs` must be \(shape) or a list of them, not \(item)") }
            do { return try task.read(object) } catch let error as TaskDescriptor.FieldError {
                switch (error.field.kind, error.field.required) {
                case (.texts, _): throw APIError.badRequest("each input needs `\(error.field.name)`: a non-empty list of strings")
                case (.text, true): throw APIError.badRequest("each input needs a string `\(error.field.name)`")
                case (.text, false): throw APIError.badRequest("`\(error.field.name)` must be a string")
                }
            }
        }
        return (objects, batch)
    }

    /// A task parameter's bound (`TaskDescriptor.Parameter.violation`) checked on its JSON field: "`top_k` must be at
    /// least 1, not 0", a 422.
    func checkParameter(_ task: TaskDescriptor, _ name: String, _ value: Int) throws {
        if let violation = try task.require(name).violation(value) { throw APIError.validation("`\(name)` \(violation), not \(value)") }
    }

    /// One answer for a single input, the list for a batch.
    func shaped<T: Encodable>(_ answers: [T], batch: Bool) -> any Encodable { batch ? answers : answers[0] }

    /// `POST /ner`: {"inputs": text(s), "parameters": {"aggregation_strategy"}} → entities per text.
    func ner(_ body: Body, _ timings: inout Timings) async throws -> any Encodable {
        let (texts, batch) = try inputTexts(body)
        let name = try body.parameters().string("aggregation_strategy") ?? "simple"
        guard let aggregation = Aggregation(rawValue: name) else {
            throw APIError.validation("aggregation_strategy must be one of \(Aggregation.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(name)\"")
        }
        let task = try TokenClassificationTask(pipeline: pipeline, aggregation: aggregation)
        return shaped(try await run(task, texts, characters: texts.reduce(0) { $0 + $1.count }, &timings), batch: batch)
    }

    /// `POST /qa`: {"inputs": {"question", "context"} (or a list), "parameters": {"top_k", "max_answer_len",
    /// "doc_stride", "max_seq_len", "handle_impossible_answer"}} → an answer ({answer, score, start, end}), a list
    /// of them when top_k > 1, per input.
    func questionAnswering(_ body: Body, _ timings: inout Timings) async throws -> any Encodable {
        let (objects, batch) = try inputObjects(body, task: .questionAnswering)
        let inputs = objects.map { QuestionInput(question: $0.text("question"), context: $0.text("context")) }
        let parameters = try body.parameters()
        let settings = AnswerOptions(topK: try parameters.int("top_k") ?? 1, maxAnswerLength: try parameters.int("max_answer_len") ?? 15,
                                     docStride: try parameters.int("doc_stride"), maxSequenceLength: try parameters.int("max_seq_len"),
                                     allowNoAnswer: try parameters.bool("handle_impossible_answer", default: false))
        try checkParameter(.questionAnswering, "top_k", settings.topK)
        try checkParameter(.questionAnswering, "max_answer_len", settings.maxAnswerLength)
        let task = try QuestionAnsweringTask(pipeline: pipeline, options: settings)
        let answers = try await run(task, inputs, characters: inputs.reduce(0) { $0 + $1.question.count + $1.context.count }, &timings)
        let each: [any Encodable] = answers.map { settings.topK == 1 && $0.count == 1 ? $0[0] as any Encodable : $0 as any Encodable }
        return batch ? each.map(AnyEncodable.init) as any Encodable : each[0]
    }

    /// `POST /nsp`: {"inputs": {"text", "text_pair"} (or a list)} → {"is_next_probability", "is_next"} per pair.
    func nextSentence(_ body: Body, _ timings: inout Timings) async throws -> any Encodable {
        let (objects, batch) = try inputObjects(body, task: .nextSentence)
        let inputs = objects.map { TextInput(text: $0.text("text"), textPair: $0.text("text_pair")) }
        let answers = try await run(try NextSentenceTask(pipeline: pipeline), inputs,
                                    characters: inputs.reduce(0) { $0 + $1.text.count + ($1.textPair?.count ?? 0) }, &timings)
        return shaped(answers.map { NextSentenceAnswer(isNextProbability: $0.isNextProbability, isNext: $0.isNext) }, batch: batch)
    }

    /// `POST /multiple-choice`: {"inputs": {"prompt", "choices"} (or a list)} → the choices scored, best first.
    func multipleChoice(_ body: Body, _ timings: inout Timings) async throws -> any Encodable {
        let (objects, batch) = try inputObjects(body, task: .multipleChoice)
        let inputs = objects.map { ChoiceInput(prompt: $0.text("prompt"), choices: $0.texts("choices")) }
        let answers = try await run(try MultipleChoiceTask(pipeline: pipeline), inputs,
                                    characters: inputs.reduce(0) { $0 + $1.prompt.count + $1.choices.reduce(0) { $0 + $1.count } }, &timings)
        return shaped(answers, batch: batch)
    }

    /// TEI `POST /predict`: `inputs` a text, a pair [a, b], or a batch [[a], [a, b], …]; every label scored, best
    /// first (`raw_scores`: the logits).
    func predict(_ body: Body, _ timings: inout Timings) async throws -> any Encodable {
        guard let value = body.json["inputs"], value != .null else { throw APIError.badRequest("missing field `inputs`") }
        func sequence(_ v: JSONValue) throws -> TextInput {
            if let text = v.string { return TextInput(text: text) }
            guard let parts = v.array, (1...2).contains(parts.count), parts.allSatisfy({ $0.string != nil }) else {
                throw APIError.badRequest("`inputs` must be a string, a pair of strings [a, b], or a batch of [a] and [a, b]; not \(v)")
            }
            return TextInput(text: parts[0].string!, textPair: parts.count == 2 ? parts[1].string : nil)
        }
        let batch = value.array?.first?.array != nil
        let inputs = batch ? try value.array!.map(sequence) : [try sequence(value)]
        try checkBatchSize(inputs.count)
        let raw = try body.bool("raw_scores", default: false)
        var task = try ClassificationTask(pipeline: pipeline, topK: nil, function: raw ? ScoreFunction.none : nil)
        (task.truncate, task.side) = try truncation(body)
        let answers = try await run(task, inputs, characters: inputs.reduce(0) { $0 + $1.text.count + ($1.textPair?.count ?? 0) }, &timings)
        return shaped(answers, batch: batch)
    }

    /// TEI `POST /rerank` (a cross-encoder: a classification model with one label): {"query", "texts", "raw_scores",
    /// "return_text"} → [{"index", "score", "text"?}], best first.
    func rerank(_ body: Body, _ timings: inout Timings) async throws -> [Rank] {
        guard let query = try body.string("query") else { throw APIError.badRequest("missing field `query`") }
        let texts = try inputTexts(body, key: "texts").texts
        let raw = try body.bool("raw_scores", default: false), returnText = try body.bool("return_text", default: false)
        guard pipeline.model.head == .sequenceClassification, pipeline.model.config.numLabels == 1 else {
            throw APIError(.init(code: 424, reasonPhrase: "Failed Dependency"), .unsupported,
                           "rerank needs a cross-encoder (MegatronBertForSequenceClassification with one label); this model is MegatronBert\(pipeline.model.head.rawValue) with \(pipeline.model.config.numLabels) labels")
        }
        var task = try ClassificationTask(pipeline: pipeline, topK: nil, function: raw ? ScoreFunction.none : .sigmoid)
        (task.truncate, task.side) = try truncation(body)
        let answers = try await run(task, texts.map { TextInput(text: query, textPair: $0) },
                                    characters: texts.reduce(0) { $0 + query.count + $1.count }, &timings)
        return answers.enumerated().map { Rank(index: $0.offset, score: $0.element[0].score, text: returnText ? texts[$0.offset] : nil) }
            .sorted { $0.score > $1.score || ($0.score == $1.score && $0.index < $1.index) }
    }

    /// TEI `POST /similarity`: {"inputs": {"source_sentence", "sentences"}} → the cosine of each sentence's vector
    /// with the source's.
    func similarity(_ body: Body, _ timings: inout Timings) async throws -> [Double] {
        guard let inputs = body.json["inputs"]?.object, let source = inputs["source_sentence"]?.string,
              let list = inputs["sentences"]?.array, !list.isEmpty, list.allSatisfy({ $0.string != nil }) else {
            throw APIError.badRequest("`inputs` must be {\"source_sentence\": \"…\", \"sentences\": [\"…\", …]}")
        }
        let sentences = list.compactMap(\.string)
        try checkBatchSize(sentences.count + 1)
        let (truncate, side) = try truncation(body)
        let plan = try rows([source] + sentences, truncate: truncate, side: side, &timings)
        let vectors = try await self.vectors(plan, body: body, normalizeByDefault: true, &timings)
        return vectors.dropFirst().map { Pipeline.cosine(vectors[0], $0) }
    }
}

/// One reranked text.
struct Rank: Encodable {
    var index: Int
    var score: Double
    var text: String?
}

/// `/nsp`'s answer, the command line's fields.
struct NextSentenceAnswer: Encodable {
    var isNextProbability: Double
    var isNext: Bool
    enum CodingKeys: String, CodingKey { case isNextProbability = "is_next_probability", isNext = "is_next" }
}

/// Any encodable value (for lists whose elements differ in shape).
struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: Encoder) throws { try value.encode(to: encoder) }
}
