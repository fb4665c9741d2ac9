/// What can go wrong building or running a tokenizer, with a message a user can act on.
public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    public var message: String
    /// An error with a message that says what is wrong and what to do.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
