import BERTTokenizer
import Foundation
import HTTPTypes
import MegatronBERT
import TensorFiles

/// A failed request as text-embeddings-inference answers it: an HTTP status and the body
/// `{"error": "what went wrong", "error_type": "Validation"}`. Every failure of every route ends as one — malformed
/// JSON and wrong types too, where TEI answers plain text.
public struct APIError: Error, Sendable, Encodable {
    /// TEI's error kinds (its `ErrorType`), as they appear in `error_type`.
    public enum Kind: String, Sendable, Encodable {
        case validation = "Validation", tokenizer = "Tokenizer", backend = "Backend", overloaded = "Overloaded"
        case unhealthy = "Unhealthy", empty = "Empty", unauthorized = "Unauthorized", unsupported = "Unsupported"
        case notFound = "NotFound"
        /// Ours: the client went away before its request ran (status 499, which nobody reads; for the metrics).
        case cancelled = "Cancelled"
    }

    public var status: HTTPResponse.Status
    public var error: String
    public var errorType: Kind

    public init(_ status: HTTPResponse.Status, _ kind: Kind, _ message: String) {
        self.status = status
        errorType = kind
        error = message
    }

    enum CodingKeys: String, CodingKey { case error, errorType = "error_type" }

    /// 422 Validation: a request that is well formed but asks for something impossible.
    static func validation(_ message: String) -> APIError { APIError(.unprocessableContent, .validation, message) }
    /// 400: a body that is not what the route reads (malformed JSON, wrong types, missing fields).
    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, .validation, message) }
    /// 429 Overloaded: more requests in flight than `--max-concurrent-requests` (HTTP and gRPC alike).
    static func overloaded(limit: Int) -> APIError {
        APIError(.tooManyRequests, .overloaded, "Model is overloaded: more than \(limit) requests in flight (--max-concurrent-requests)")
    }
    /// 413 Validation: a body over `--payload-limit` (found while collecting it, or declared by its head).
    static func payloadTooLarge(limit: Int) -> APIError {
        APIError(.contentTooLarge, .validation, "the request body is over the payload limit of \(limit) bytes (--payload-limit)")
    }

    /// The API error for any error a route meets: the library's errors by their kind (bad input 422, a head the
    /// model lacks 424, out of memory 503, the rest 500), the tokenizer's 422.
    static func from(_ error: Error) -> APIError {
        switch error {
        case let error as APIError: return error
        case let error as TokenizerError: return APIError(.unprocessableContent, .tokenizer, error.message)
        case let error as JSONParseError: return .badRequest("the body is not valid JSON: \(error)")
        case let error as ModelError:
            switch error.kind {
            case .badInput: return APIError(.unprocessableContent, .validation, error.message)
            case .unsupported: return APIError(.init(code: 424, reasonPhrase: "Failed Dependency"), .unsupported, error.message)
            case .resource: return APIError(.serviceUnavailable, .backend, error.message)
            case .internal: return APIError(.internalServerError, .backend, error.message)
            }
        case is BatchQueue.ClientLeft:
            return APIError(.init(code: 499, reasonPhrase: "Client Closed Request"), .cancelled, "the client closed the connection before its request ran")
        case is CancellationError: return APIError(.serviceUnavailable, .unhealthy, "the server is shutting down")
        default: return APIError(.internalServerError, .backend, "\(error)")
        }
    }
}
