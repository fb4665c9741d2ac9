import Foundation

extension BERTTokenizer {
    /// Ids back to text as Hugging Face's WordPiece decoder does: `##` pieces join the previous token,
    /// other tokens get a space before them, and each token's space before `.`, `?`, `!`, `,` and the
    /// English contractions (`n't`, `'m`, `'s`, `'ve`, `'re`) is removed.
    ///
    /// ```swift
    /// tokenizer.decode(encoding.ids, skipSpecialTokens: true)  // "The capital of France is."
    /// ```
    /// - Throws: when an id is outside the vocabulary.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws -> String {
        var tokens: [String] = []
        for id in ids {
            guard let token = vocabulary.token(of: id) else {
                throw TokenizerError("id \(id) is outside the vocabulary (0..<\(vocabulary.count))")
            }
            if skipSpecialTokens && specialIDs.contains(id) { continue }
            tokens.append(token)
        }
        return convertTokensToString(tokens)
    }

    /// Tokens (vocabulary entries, or any text) joined as `decode` joins them: Hugging Face's
    /// `convert_tokens_to_string`.
    ///
    /// ```swift
    /// tokenizer.convertTokensToString(["Mega", "##tron", "is", "big", "."])  // "Megatron is big."
    /// ```
    public func convertTokensToString(_ tokens: [String]) -> String {
        var text = ""
        var first = true
        for token in tokens {
            var piece: String
            if first {
                piece = token
            } else if token.utf8.starts(with: wordPiece.continuingPrefix.utf8) {
                // By bytes: as Characters, "##" + a combining mark is "#" + "#\u{301}" and has no "##" prefix.
                piece = String(decoding: token.utf8.dropFirst(wordPiece.continuingPrefix.utf8.count), as: UTF8.self)
            } else {
                piece = " " + token
            }
            first = false
            for (dirty, clean) in Self.cleanup { piece = piece.replacingOccurrences(of: dirty, with: clean) }
            text += piece
        }
        return text
    }

    static let cleanup = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
}
