/// Errors from loading a model or running it, each saying what was wrong and what to do, with a kind a server
/// maps to a status code.
///
/// ```swift
/// do { _ = try pipeline.fillMask(["no mask here"]) } catch let error as ModelError {
///     print(error.kind, error.message)  // badInput, "no [MASK] in …"
/// }
/// ```
public struct ModelError: Error, CustomStringConvertible, Equatable {
    /// What went wrong, for a server to choose a status code.
    public enum Kind: String, Sendable {
        /// The input is wrong: a request, a text, a batch, a file or a flag (HTTP 400 / 422).
        case badInput
        /// This model (or this build) cannot do what was asked: a missing head, an unsupported architecture (HTTP 400 / 501).
        case unsupported
        /// Not enough of something: memory, disk, network, a lock held by another process (HTTP 503 / 507).
        case resource
        /// A bug: an invariant did not hold (HTTP 500).
        case `internal`
    }

    public var kind: Kind
    public var message: String

    /// A `badInput` error.
    public init(_ message: String) {
        self.init(.badInput, message)
    }

    /// An error of `kind`; `message` says what was wrong and what to do.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
