/// Errors from loading a model or running it, each saying what was wrong and what to do.
public struct ModelError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
