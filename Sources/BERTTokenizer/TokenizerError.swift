/// What can go wrong building or running a tokenizer, with a message a user can act on.
public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
