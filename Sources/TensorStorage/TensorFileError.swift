/// Everything that can go wrong while reading a tensor file, with a message a user can act on.
public struct TensorFileError: Error, CustomStringConvertible, Equatable {
    /// The file the error is about (may be empty when reading from memory).
    public var path: String
    /// What was wrong.
    public var reason: String

    /// An error about the file at `path`.
    public init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String {
        path.isEmpty ? reason : "\(path): \(reason)"
    }
}
