import TensorFiles

/// A task declared once: its name (the CLI command and the Python worker's task), its route and HTTP body, the fields
/// of one input (a JSON Lines line; a route's input object), its parameters with their defaults and bounds, the heads
/// that serve it and the shape of its answer. The command line's JSON Lines reading, the server's task routes,
/// `POST /`'s dispatch, the routes a model serves, the OpenAPI document, `megatron-bert tasks` (which the Python worker
/// is checked against) and the tasks' own parameter checks all come from `TaskDescriptor.all`.
///
/// ```swift
/// let task = TaskDescriptor.named("qa")!
/// print(task.route, task.fields.map(\.name))        // "/qa" ["question", "context"]
/// try task.check("top_k", 0)                         // throws: top_k must be at least 1, not 0
/// ```
public struct TaskDescriptor: Sendable, Equatable {
    /// One field of an input.
    public struct Field: Sendable, Equatable {
        public enum Kind: String, Sendable { case text, texts }
        /// Its JSON name (Hugging Face's).
        public var name: String
        /// A string, or a non-empty list of strings.
        public var kind: Kind
        public var required: Bool

        public init(_ name: String, _ kind: Kind = .text, required: Bool = true) {
            self.name = name
            self.kind = kind
            self.required = required
        }
    }

    /// A parameter of the task: a member of a Hugging Face body's `parameters` (or of a TEI body) and, where the
    /// command line has it, a flag.
    public struct Parameter: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            case integer(minimum: Int?)
            case boolean
            case texts
            case choice([String])
        }
        /// Its JSON name ("top_k").
        public var name: String
        /// The command line's flag ("--top-k"), nil where the command has none.
        public var flag: String?
        public var kind: Kind
        /// What it is when not given, as the route and the command take it (nil: chosen by the task).
        public var defaultValue: String?

        public init(_ name: String, flag: String? = nil, _ kind: Kind, default defaultValue: String? = nil) {
            self.name = name
            self.flag = flag
            self.kind = kind
            self.defaultValue = defaultValue
        }

        /// What is wrong with `value` ("must be at least 1"), nil when nothing is: the one bound the task, its command
        /// and its route all check, each wording it its own way (the flag, the JSON field).
        public func violation(_ value: Int) -> String? {
            if case .integer(let minimum?) = kind, value < minimum { return "must be at least \(minimum)" }
            return nil
        }
    }

    /// How a route's body is shaped, with the name of its OpenAPI component.
    public enum Body: Sendable, Equatable {
        /// Hugging Face's Inference API: `{"inputs": …, "parameters": {…}}`, its schema made from `fields` and
        /// `parameters`.
        case huggingFace(String)
        /// Text Embeddings Inference's body (its schema written out in the server's OpenAPI document).
        case tei(String)

        /// The OpenAPI component's name.
        public var schema: String {
            switch self {
            case .huggingFace(let name), .tei(let name): name
            }
        }
    }

    /// The command line's subcommand, and the Python worker's task ("fill-mask").
    public var name: String
    /// The HTTP route ("/fill-mask"); `POST /` and `--task` name it without the slash.
    public var route: String
    /// What messages call it ("question answering").
    public var title: String
    /// One line on what it does (the OpenAPI summary).
    public var summary: String
    /// The heads that serve it; nil: every model (the encoder's output is enough).
    public var heads: [ModelHead]?
    /// What to use instead when the model lacks the head.
    public var hint: String
    /// The fields of one input.
    public var fields: [Field]
    public var parameters: [Parameter]
    public var body: Body
    /// The answer to one input: this OpenAPI component (or "number"), nested in lists as deep as each of `depths`
    /// says (fill-mask: a list of predictions, or a list per mask).
    public var answer: String
    public var depths: [Int]
    /// The members of the command's JSON result object, for the tasks whose result is one object per input (embed,
    /// nsp); nil where the result is a list (a worker reads it under "result").
    public var objectResult: [String]?

    /// The parameter named `name`.
    public func parameter(_ name: String) -> Parameter? { parameters.first { $0.name == name } }

    /// The parameter `name` (an internal error when the task has none: a misspelt name in the code).
    public func require(_ name: String) throws -> Parameter {
        guard let parameter = parameter(name) else { throw ModelError(.internal, "internal error: \(self.name) has no parameter \(name)") }
        return parameter
    }

    /// Checks the integer parameter `name` against its bound (`Parameter.violation`).
    /// - Throws: `ModelError` (bad input): "top_k must be at least 1, not 0".
    public func check(_ name: String, _ value: Int) throws {
        if let violation = try require(name).violation(value) { throw ModelError("\(name) \(violation), not \(value)") }
    }

    /// One input's fields read from a JSON object (a JSON Lines line, an element of a route's `inputs`): every field
    /// of `fields` checked for its kind and presence.
    /// - Throws: `FieldError`, for the caller to word as its surface words errors (a line number, an HTTP status).
    public func read(_ object: [String: JSONValue]) throws -> InputFields {
        var values: [String: [String]] = [:]
        for field in fields {
            let value = object[field.name]
            switch field.kind {
            case .text:
                if let text = value?.string {
                    values[field.name] = [text]
                } else if field.required || (value != nil && value != .null) {
                    throw FieldError(field: field, present: value != nil && value != .null)
                }
            case .texts:
                guard let list = value?.array, !list.isEmpty, list.allSatisfy({ $0.string != nil }) else {
                    throw FieldError(field: field, present: value != nil && value != .null)
                }
                values[field.name] = list.compactMap(\.string)
            }
        }
        return InputFields(values: values)
    }

    /// A field of an input that is missing or of the wrong kind.
    public struct FieldError: Error, Equatable {
        public var field: Field
        /// Whether it was there (with another kind of value) rather than absent.
        public var present: Bool
    }

    /// The route without its slash: what `POST /` and `serve --task` call it.
    public var routeName: String { String(route.dropFirst()) }

    /// Whether a model with `head` serves this task.
    public func serves(_ head: ModelHead) -> Bool { heads?.contains(head) ?? true }

    /// The task named `name` (its command or its route name).
    public static func named(_ name: String) -> TaskDescriptor? { all.first { $0.name == name || $0.routeName == name } }

    /// Every task, in the order `POST /` and `--task` list them.
    public static let all: [TaskDescriptor] = [embed, fillMask, ner, questionAnswering, nextSentence, multipleChoice, classify]

    public static let embed = TaskDescriptor(
        name: "embed", route: "/embed", title: "embeddings", summary: "Sentence vectors (normalized by default)", heads: nil, hint: "",
        fields: [Field("text")], parameters: [], body: .tei("EmbedRequest"), answer: "number", depths: [2],
        objectResult: ["embedding"])

    public static let fillMask = TaskDescriptor(
        name: "fill-mask", route: "/fill-mask", title: "fill-mask", summary: "The words behind [MASK]", heads: [.preTraining, .maskedLM],
        hint: "use a masked-LM checkpoint such as NVIDIA's megatron-bert-cased-345m (MegatronBertForPreTraining)",
        fields: [Field("text")],
        parameters: [Parameter("top_k", flag: "--top-k", .integer(minimum: 1), default: "5"), Parameter("targets", flag: "--targets", .texts)],
        body: .huggingFace("FillMaskRequest"), answer: "MaskPrediction", depths: [1, 2], objectResult: nil)

    public static let ner = TaskDescriptor(
        name: "ner", route: "/ner", title: "NER", summary: "Named entities", heads: [.tokenClassification],
        hint: "pass a fine-tuned MegatronBertForTokenClassification checkpoint (its config.json names the labels)",
        fields: [Field("text")],
        parameters: [Parameter("aggregation_strategy", flag: "--aggregation", .choice(Aggregation.allCases.map(\.rawValue)), default: "simple")],
        body: .huggingFace("NERRequest"), answer: "Entity", depths: [1, 2], objectResult: nil)

    public static let questionAnswering = TaskDescriptor(
        name: "qa", route: "/qa", title: "question answering", summary: "Extractive question answering", heads: [.questionAnswering],
        hint: "pass a fine-tuned MegatronBertForQuestionAnswering checkpoint (e.g. trained on SQuAD)",
        fields: [Field("question"), Field("context")],
        parameters: [Parameter("top_k", flag: "--top-k", .integer(minimum: 1), default: "1"),
                     Parameter("max_answer_len", flag: "--max-answer-length", .integer(minimum: 1), default: "15"),
                     Parameter("doc_stride", flag: "--doc-stride", .integer(minimum: nil)),
                     Parameter("max_seq_len", flag: "--max-seq-length", .integer(minimum: nil)),
                     Parameter("handle_impossible_answer", flag: "--allow-no-answer", .boolean, default: "false")],
        body: .huggingFace("QARequest"), answer: "Answer", depths: [0, 1, 2], objectResult: nil)

    public static let nextSentence = TaskDescriptor(
        name: "nsp", route: "/nsp", title: "next-sentence prediction", summary: "Next-sentence prediction", heads: [.preTraining, .nextSentencePrediction],
        hint: "NVIDIA's megatron-bert-cased-345m (MegatronBertForPreTraining) has the binary head",
        fields: [Field("text"), Field("text_pair")], parameters: [], body: .huggingFace("NSPRequest"), answer: "NSPResponse", depths: [0, 1],
        objectResult: ["is_next", "is_next_probability"])

    public static let multipleChoice = TaskDescriptor(
        name: "multiple-choice", route: "/multiple-choice", title: "multiple choice", summary: "Multiple choice", heads: [.multipleChoice],
        hint: "fine-tune a MegatronBertForMultipleChoice head (e.g. on SWAG) and pass that checkpoint",
        fields: [Field("prompt"), Field("choices", .texts)], parameters: [], body: .huggingFace("MultipleChoiceRequest"), answer: "ChoiceScore",
        depths: [1, 2], objectResult: nil)

    public static let classify = TaskDescriptor(
        name: "classify", route: "/predict", title: "classification", summary: "Sequence classification: every label scored", heads: [.sequenceClassification],
        hint: "pass a fine-tuned MegatronBertForSequenceClassification checkpoint (its config.json names the labels)",
        fields: [Field("text"), Field("text_pair", required: false)], parameters: [], body: .tei("PredictRequest"),
        answer: "Prediction", depths: [1, 2], objectResult: nil)
}

/// One input's fields as its task's descriptor read them (`TaskDescriptor.read`): every required field is there, with
/// its kind.
public struct InputFields: Sendable, Equatable {
    let values: [String: [String]]

    /// A text field ("" for an optional one that is absent: use `optionalText`).
    public func text(_ name: String) -> String { values[name]?.first ?? "" }
    /// An optional text field.
    public func optionalText(_ name: String) -> String? { values[name]?.first }
    /// A list-of-texts field.
    public func texts(_ name: String) -> [String] { values[name] ?? [] }
}
