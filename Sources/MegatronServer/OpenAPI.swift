import Foundation

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

    static func document(version: String) -> Object {
        let texts = oneOf(string, array(string))
        let tokenIDs = oneOf(array(integer), array(array(integer)))
        let embedInputs = oneOf(string, array(string), array(integer), array(array(integer)))
        let hf = { (inputs: Object, parameters: Object) in object(["inputs": inputs, "parameters": object(parameters)], required: ["inputs"]) }
        let vector = array(number)
        let direction: Object = ["type": "string", "enum": ["Left", "Right"]]
        let schemas: Object = [
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
            "FillMaskRequest": hf(texts, ["top_k": integer, "targets": texts]),
            "MaskPrediction": object(["score": number, "token": integer, "token_str": string, "sequence": string]),
            "NERRequest": hf(texts, ["aggregation_strategy": ["type": "string", "enum": ["none", "simple", "first", "average", "max"]]]),
            "Entity": object(["entity_group": string, "entity": string, "index": integer, "score": number, "word": string, "start": integer, "end": integer]),
            "QARequest": hf(oneOf(object(["question": string, "context": string], required: ["question", "context"]),
                                  array(object(["question": string, "context": string], required: ["question", "context"]))),
                            ["top_k": integer, "max_answer_len": integer, "doc_stride": integer, "max_seq_len": integer, "handle_impossible_answer": boolean]),
            "Answer": object(["answer": string, "score": number, "start": integer, "end": integer]),
            "NSPRequest": hf(oneOf(object(["text": string, "text_pair": string], required: ["text", "text_pair"]),
                                   array(object(["text": string, "text_pair": string], required: ["text", "text_pair"]))), [:]),
            "NSPResponse": object(["is_next_probability": number, "is_next": boolean]),
            "MultipleChoiceRequest": hf(oneOf(object(["prompt": string, "choices": array(string)], required: ["prompt", "choices"]),
                                              array(object(["prompt": string, "choices": array(string)], required: ["prompt", "choices"]))), [:]),
            "ChoiceScore": object(["index": integer, "choice": string, "score": number, "logit": number]),
            "Info": object(["model_id": string, "model_sha": string, "model_dtype": string, "model_type": ["type": "object"],
                            "max_concurrent_requests": integer, "max_input_length": integer, "max_batch_tokens": integer,
                            "max_batch_requests": integer, "max_client_batch_size": integer, "auto_truncate": boolean,
                            "tokenization_workers": integer, "version": string]),
        ]
        let tei = "Text Embeddings Inference", tasks = "Tasks (Hugging Face Inference API)"
        var paths: Object = [
            "/embed": post("Sentence vectors (normalized by default)", request: ref("EmbedRequest"), answer: array(vector), tag: tei),
            "/embed_all": post("Every token's vector", request: ref("EmbedRequest"), answer: array(array(vector)), tag: tei),
            "/v1/embeddings": post("OpenAI's embeddings", request: ref("OpenAICompatRequest"), answer: ref("OpenAICompatResponse"), tag: tei),
            "/similarity": post("Cosine of each sentence with the source", request: ref("SimilarityRequest"), answer: array(number), tag: tei),
            "/tokenize": post("Tokens with byte offsets", request: ref("TokenizeRequest"), answer: array(array(ref("SimpleToken"))), tag: tei),
            "/decode": post("Token ids to text", request: ref("DecodeRequest"), answer: array(string), tag: tei),
            "/predict": post("Sequence classification: every label scored", request: ref("PredictRequest"),
                             answer: oneOf(array(ref("Prediction")), array(array(ref("Prediction")))), tag: tei),
            "/rerank": post("Cross-encoder reranking (one-label classification heads)", request: ref("RerankRequest"), answer: array(ref("Rank")), tag: tei),
            "/fill-mask": post("The words behind [MASK]", request: ref("FillMaskRequest"),
                               answer: oneOf(array(ref("MaskPrediction")), array(array(ref("MaskPrediction")))), tag: tasks),
            "/ner": post("Named entities", request: ref("NERRequest"), answer: oneOf(array(ref("Entity")), array(array(ref("Entity")))), tag: tasks),
            "/qa": post("Extractive question answering", request: ref("QARequest"),
                        answer: oneOf(ref("Answer"), array(ref("Answer")), array(array(ref("Answer")))), tag: tasks),
            "/nsp": post("Next-sentence prediction", request: ref("NSPRequest"), answer: oneOf(ref("NSPResponse"), array(ref("NSPResponse"))), tag: tasks),
            "/multiple-choice": post("Multiple choice", request: ref("MultipleChoiceRequest"),
                                     answer: oneOf(array(ref("ChoiceScore")), array(array(ref("ChoiceScore")))), tag: tasks),
            "/": post("The model's default task (--task)", request: ["type": "object"], answer: [:], tag: tasks),
        ]
        paths["/health"] = ["get": ["summary": "200 when the model is loaded and warmed up", "tags": [tei], "responses": ["200": ["description": "Healthy"]]]]
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
