import Foundation
import MegatronBERT

/// `GET /openapi.json`: the OpenAPI 3 document of every route — TEI's with TEI's schemas, ours with Hugging Face
/// Inference API bodies.
enum OpenAPI {
    typealias Object = [String: Any]

    static func ref(_ name: String) -> Object { ["$ref": "#/components/schemas/\(name)"] }
    static func array(_ items: Object) -> Object { ["type": "array", "items": items] }
    static let string: Object = ["type": "string"]
    static let integer: Object = ["type": "integer", "minimum": 0]
    static let number: Object = ["type": "number"]
    static let boolean: Object = ["type": "boolean"]
    static func object(_ properties: Object, required: [String] = []) -> Object {
        var schema: Object = ["type": "object", "properties": properties]
        if !required.isEmpty { schema["required"] = required }
        return schema
    }
    static func oneOf(_ schemas: Object...) -> Object { ["oneOf": schemas] }

    /// A POST route: its request schema, its answer schema, the error statuses it can give.
    static func post(_ summary: String, request: Object, answer: Object, tag: String) -> Object {
        var responses: Object = ["200": ["description": "OK", "content": ["application/json": ["schema": answer]]]]
        for (status, what) in [("400", "Malformed or mistyped body"), ("401", "Missing or wrong API key"),
                               ("413", "Body over --payload-limit"), ("422", "Invalid input"),
                               ("424", "The model's head cannot serve this route"), ("429", "Over --max-concurrent-requests")] {
            responses[status] = ["description": what, "content": ["application/json": ["schema": ref("ErrorResponse")]]]
        }
        return ["post": ["summary": summary, "tags": [tag], "requestBody": ["required": true, "content": ["application/json": ["schema": request]]],
                         "responses": responses]]
    }

    /// A task's Hugging Face body: `inputs` (a text or texts for a task of one text field; else an object of its
    /// fields, or a list of them) and `parameters`.
    static func request(_ task: TaskDescriptor) -> Object {
        func schema(_ kind: TaskDescriptor.Field.Kind) -> Object { kind == .text ? string : array(string) }
        let inputs: Object
        if task.fields.count == 1, task.fields[0].kind == .text {
            inputs = oneOf(string, array(string))
        } else {
            let one = object(Dictionary(uniqueKeysWithValues: task.fields.map { ($0.name, schema($0.kind) as Any) }),
                             required: task.fields.filter(\.required).map(\.name))
            inputs = oneOf(one, array(one))
        }
        let parameters = Dictionary(uniqueKeysWithValues: task.parameters.map { parameter -> (String, Any) in
            switch parameter.kind {
            case .integer: (parameter.name, integer)
            case .boolean: (parameter.name, boolean)
            case .texts: (parameter.name, oneOf(string, array(string)))
            case .choice(let values): (parameter.name, ["type": "string", "enum": values])
            }
        })
        return object(["inputs": inputs, "parameters": object(parameters)], required: ["inputs"])
    }

    /// A task's answer: to one input, or to a batch (one more list).
    static func answer(_ task: TaskDescriptor) -> Object {
        let item = task.answer == "number" ? number : ref(task.answer)
        let shapes = task.depths.map { depth in (0..<depth).reduce(item) { inner, _ in array(inner) } }
        return shapes.count == 1 ? shapes[0] : ["oneOf": shapes]
    }

    static func document(version: String) -> Object {
        let texts = oneOf(string, array(string))
        let tokenIDs = oneOf(array(integer), array(array(integer)))
        let embedInputs = oneOf(string, array(string), array(integer), array(array(integer)))
        let vector = array(number)
        let direction: Object = ["type": "string", "enum": ["Left", "Right"]]
        var schemas: Object = [
            "ErrorResponse": object(["error": string, "error_type": ["type": "string", "enum": ["Validation", "Tokenizer", "Backend", "Overloaded", "Unhealthy", "Empty", "Unauthorized", "Unsupported"]]],
                                    required: ["error", "error_type"]),
            "EmbedRequest": object(["inputs": embedInputs, "truncate": boolean, "truncation_direction": direction,
                                    "normalize": boolean, "dimensions": integer], required: ["inputs"]),
            "OpenAICompatRequest": object(["input": embedInputs, "model": string, "user": string, "dimensions": integer,
                                           "encoding_format": ["type": "string", "enum": ["float", "base64"]]], required: ["input"]),
            "OpenAICompatResponse": object(["object": string, "model": string,
                                            "data": array(object(["object": string, "embedding": oneOf(vector, string), "index": integer])),
                                            "usage": object(["prompt_tokens": integer, "total_tokens": integer])]),
            "TokenizeRequest": object(["inputs": texts, "add_special_tokens": boolean], required: ["inputs"]),
            "SimpleToken": object(["id": integer, "text": string, "special": boolean, "start": ["type": "integer", "nullable": true],
                                   "stop": ["type": "integer", "nullable": true]]),
            "DecodeRequest": object(["ids": tokenIDs, "skip_special_tokens": boolean], required: ["ids"]),
            "PredictRequest": object(["inputs": oneOf(string, array(string), array(array(string))), "truncate": boolean,
                                              "truncation_direction": direction, "raw_scores": boolean],
                                     required: ["inputs"]),
            "Prediction": object(["label": string, "score": number]),
            "RerankRequest": object(["query": string, "texts": array(string), "truncate": boolean, "truncation_direction": direction, "raw_scores": boolean, "return_text": boolean],
                                    required: ["query", "texts"]),
            "Rank": object(["index": integer, "score": number, "text": string]),
            "SimilarityRequest": object(["inputs": object(["source_sentence": string, "sentences": array(string)], required: ["source_sentence", "sentences"]),
                                         "truncate": boolean, "truncation_direction": direction], required: ["inputs"]),
            "MaskPrediction": object(["score": number, "token": integer, "token_str": string, "sequence": string]),
            "Entity": object(["entity_group": string, "entity": string, "index": integer, "score": number, "word": string, "start": integer, "end": integer]),
            "Answer": object(["answer": string, "score": number, "start": integer, "end": integer]),
            "NSPResponse": object(["is_next_probability": number, "is_next": boolean]),
            "ChoiceScore": object(["index": integer, "choice": string, "score": number, "logit": number]),
            "Info": object(["model_id": string, "model_sha": string, "model_dtype": string, "model_type": ["type": "object"],
                            "max_concurrent_requests": integer, "max_input_length": integer, "max_batch_tokens": integer,
                            "max_batch_requests": integer, "max_client_batch_size": integer, "auto_truncate": boolean,
                            "tokenization_workers": integer, "version": string]),
        ]
        let tei = "Text Embeddings Inference", tasks = "Tasks (Hugging Face Inference API)"
        var paths: Object = [
            "/embed_all": post("Every token's vector", request: ref("EmbedRequest"), answer: array(array(vector)), tag: tei),
            "/v1/embeddings": post("OpenAI's embeddings", request: ref("OpenAICompatRequest"), answer: ref("OpenAICompatResponse"), tag: tei),
            "/similarity": post("Cosine of each sentence with the source", request: ref("SimilarityRequest"), answer: array(number), tag: tei),
            "/tokenize": post("Tokens with byte offsets", request: ref("TokenizeRequest"), answer: array(array(ref("SimpleToken"))), tag: tei),
            "/decode": post("Token ids to text", request: ref("DecodeRequest"), answer: array(string), tag: tei),
            "/rerank": post("Cross-encoder reranking (one-label classification heads)", request: ref("RerankRequest"), answer: array(ref("Rank")), tag: tei),
            "/embeddings": post("OpenAI's embeddings (the route without /v1, as TEI serves it)", request: ref("OpenAICompatRequest"),
                                answer: ref("OpenAICompatResponse"), tag: tei),
            "/": post("The model's default task (--task)", request: ["type": "object"], answer: [:], tag: tasks),
            "/invocations": post("SageMaker: the model's default task, as POST /", request: ["type": "object"], answer: [:], tag: tei),
            "/vertex": post("Vertex AI: {\"instances\": [...]}, each a request of POST / (or of /rerank with query and texts), answered {\"predictions\": [...]}",
                            request: object(["instances": array(["type": "object"])]), answer: object(["predictions": ["type": "array"]]), tag: tei),
        ]
        // Every task's route, from its descriptor: a Hugging Face body's schema is made from the task's fields and
        // parameters; a TEI body's is written above.
        for task in TaskDescriptor.all {
            if case .huggingFace(let name) = task.body { schemas[name] = request(task) }
            paths[task.route] = post(task.summary, request: ref(task.body.schema), answer: answer(task),
                                     tag: { if case .tei = task.body { tei } else { tasks } }())
        }
        let health: Object = ["summary": "200 when the model is loaded and warmed up", "tags": [tei], "responses": ["200": ["description": "Healthy"]]]
        paths["/health"] = ["get": health]
        paths["/ping"] = ["get": health]  // SageMaker's
        var root = paths["/"] as? Object ?? [:]
        root["get"] = health
        paths["/"] = root
        paths["/info"] = ["get": ["summary": "The model and the router's limits", "tags": [tei],
                                  "responses": ["200": ["description": "OK", "content": ["application/json": ["schema": ref("Info")]]]]]]
        paths["/metrics"] = ["get": ["summary": "Prometheus metrics (TEI's te_* names)", "tags": [tei],
                                     "responses": ["200": ["description": "OK", "content": ["text/plain": ["schema": string]]]]]]
        return ["openapi": "3.0.3",
                "info": ["title": "megatron-bert serve", "version": version,
                         "description": "Text Embeddings Inference's API and every Megatron-BERT task, from MegatronBERT.swift"],
                "paths": paths, "components": ["schemas": schemas]]
    }

    /// The document as JSON bytes (keys sorted).
    static func json(version: String) -> Data {
        (try? JSONSerialization.data(withJSONObject: document(version: version), options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }
}
