import Foundation
import MegatronBERT

/// `/info`: text-embeddings-inference's fields.
struct Info: Encodable {
    var modelID: String
    var modelSHA: String?
    var modelDType: String
    var modelType: ModelType
    var maxConcurrentRequests: Int
    var maxInputLength: Int
    var maxBatchTokens: Int
    var maxBatchRequests: Int?
    var maxClientBatchSize: Int
    var autoTruncate: Bool
    var tokenizationWorkers: Int
    var version: String
    var sha: String?
    var dockerLabel: String?

    /// TEI's `model_type`: {"embedding": {"pooling": "mean"}} or {"classifier": {"id2label", "label2id"}}.
    enum ModelType: Encodable {
        case embedding(pooling: String)
        case classifier(id2label: [String: String])

        enum Keys: String, CodingKey { case embedding, classifier, pooling, id2label, label2id }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            switch self {
            case .embedding(let pooling):
                var inner = container.nestedContainer(keyedBy: Keys.self, forKey: .embedding)
                try inner.encode(pooling, forKey: .pooling)
            case .classifier(let id2label):
                var inner = container.nestedContainer(keyedBy: Keys.self, forKey: .classifier)
                try inner.encode(id2label, forKey: .id2label)
                try inner.encode(Dictionary(id2label.map { ($0.value, Int($0.key) ?? 0) }, uniquingKeysWith: { a, _ in a }), forKey: .label2id)
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case modelID = "model_id", modelSHA = "model_sha", modelDType = "model_dtype", modelType = "model_type"
        case maxConcurrentRequests = "max_concurrent_requests", maxInputLength = "max_input_length"
        case maxBatchTokens = "max_batch_tokens", maxBatchRequests = "max_batch_requests"
        case maxClientBatchSize = "max_client_batch_size", autoTruncate = "auto_truncate"
        case tokenizationWorkers = "tokenization_workers", version, sha, dockerLabel = "docker_label"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelID, forKey: .modelID)
        try c.encode(modelSHA, forKey: .modelSHA)  // null, as TEI writes it
        try c.encode(modelDType, forKey: .modelDType)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(maxConcurrentRequests, forKey: .maxConcurrentRequests)
        try c.encode(maxInputLength, forKey: .maxInputLength)
        try c.encode(maxBatchTokens, forKey: .maxBatchTokens)
        try c.encode(maxBatchRequests, forKey: .maxBatchRequests)
        try c.encode(maxClientBatchSize, forKey: .maxClientBatchSize)
        try c.encode(autoTruncate, forKey: .autoTruncate)
        try c.encode(tokenizationWorkers, forKey: .tokenizationWorkers)
        try c.encode(version, forKey: .version)
        try c.encode(sha, forKey: .sha)
        try c.encode(dockerLabel, forKey: .dockerLabel)
    }
}

/// `/v1/embeddings`: OpenAI's response shape.
struct OpenAIEmbeddings: Encodable {
    struct Item: Encodable {
        var object = "embedding"
        var embedding: Vector
        var index: Int
    }

    /// Floats, or base64 of their little-endian float32 bytes (`encoding_format: "base64"`).
    enum Vector: Encodable {
        case floats([Float]), base64(String)
        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .floats(let v): try c.encode(v)
            case .base64(let s): try c.encode(s)
            }
        }
    }

    struct Usage: Encodable {
        var promptTokens: Int
        var totalTokens: Int
        enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", totalTokens = "total_tokens" }
    }

    var object = "list"
    var data: [Item]
    var model: String
    var usage: Usage
}

/// `/tokenize`: one token as TEI describes it (`start`/`stop`: UTF-8 byte offsets into the input; null for special
/// tokens).
struct SimpleToken: Encodable {
    var id: Int
    var text: String
    var special: Bool
    var start: Int?
    var stop: Int?

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(text, forKey: .text)
        try c.encode(special, forKey: .special)
        try c.encode(start, forKey: .start)
        try c.encode(stop, forKey: .stop)
    }

    enum CodingKeys: String, CodingKey { case id, text, special, start, stop }
}

/// Vertex AI's answer: one prediction per instance, each the answer of the route that served it.
struct VertexResponse: Encodable {
    let predictions: [AnyEncodable]
}

