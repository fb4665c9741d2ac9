import Dispatch
import Foundation

extension BERTTokenizer {
    /// Encodes many texts (or pairs) on all cores; results in input order, padded when `padding` says so.
    ///
    /// ```swift
    /// let batch = try tokenizer.encodeBatch([("Who?", "Me."), ("Where?", nil)], maxLength: 128, padToLongest: true)
    /// ```
    public func encodeBatch(_ inputs: [(text: String, pair: String?)], maxLength: Int? = nil,
                            truncation: TruncationStrategy = .longestFirst, padToLongest: Bool = false) throws -> [Encoding] {
        let results = UnsafeMutableBufferPointer<Result<Encoding, Error>?>.allocate(capacity: inputs.count)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        let chunks = min(inputs.count, max(1, ProcessInfo.processInfo.activeProcessorCount * 4))
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let lo = inputs.count * chunk / chunks, hi = inputs.count * (chunk + 1) / chunks
            for i in lo..<hi {
                results[i] = Result { try encode(inputs[i].text, pair: inputs[i].pair, maxLength: maxLength, truncation: truncation) }
            }
        }
        let encodings = try results.map { result -> Encoding in
            guard let result else { throw TokenizerError("internal error: an input of the batch was not encoded") }
            return try result.get()
        }
        return padToLongest ? pad(encodings) : encodings
    }
}
