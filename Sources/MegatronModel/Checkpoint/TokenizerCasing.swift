import BERTTokenizer

/// Whether a converted Megatron checkpoint's tokenizer lowercases, and what says so.
///
/// NGC's zips hold no `args`, so the converter weighs what it has, strongest first: what the user states
/// (`convert --lowercase` / `--cased`, or the download's variant), the checkpoint's `args.tokenizer_type`, the
/// vocabulary's own pieces (an uncased vocabulary has no upper-case ones), and the size of the word embeddings
/// (NVIDIA pads its cased vocabulary of 28996 tokens to 29056 rows and its uncased one of 30522 to 30592).
///
/// ```swift
/// let casing = TokenizerCasing.decide(stated: nil, tokenizerType: nil, vocabulary: nil, embeddingRows: 30592)
/// print(casing.choice)  // uncased (lowercasing): the word embeddings have 30592 rows, …
/// ```
public struct TokenizerCasing: Sendable, Equatable {
    /// What a choice rests on, weakest first.
    public enum Evidence: Int, Sendable, Comparable {
        case assumed, embeddingRows, vocabulary, checkpointArgs, stated
        public static func < (a: Evidence, b: Evidence) -> Bool { a.rawValue < b.rawValue }
    }

    public var lowercase: Bool
    public var evidence: Evidence
    /// Why, in words (for the user).
    public var reason: String

    /// A choice, what it rests on and why (in words).
    public init(lowercase: Bool, evidence: Evidence, reason: String) {
        self.lowercase = lowercase
        self.evidence = evidence
        self.reason = reason
    }

    /// The user's own choice (`by`: where it came from, e.g. "--lowercase").
    public static func stated(lowercase: Bool, by source: String) -> TokenizerCasing {
        TokenizerCasing(lowercase: lowercase, evidence: .stated, reason: "\(source) says so")
    }

    /// "cased: …" or "uncased (lowercasing): …".
    public var choice: String { "\(lowercase ? "uncased (lowercasing)" : "cased"): \(reason)" }

    /// NVIDIA's vocabularies padded to a multiple of 128 rows, as Megatron-LM pads them.
    static let knownEmbeddingRows: [Int: (lowercase: Bool, what: String)] = [
        29056: (false, "NVIDIA's cased vocabulary (28996 tokens, padded)"),
        30592: (true, "NVIDIA's uncased vocabulary (30522 tokens, padded)"),
    ]

    /// The strongest evidence there is, and a warning for each weaker one that points the other way.
    public static func decide(stated: TokenizerCasing?, tokenizerType: String?, vocabulary: Vocabulary?,
                              embeddingRows: Int) -> (casing: TokenizerCasing, warnings: [String]) {
        var evidence: [TokenizerCasing] = []
        if let stated { evidence.append(stated) }
        if let type = tokenizerType, !type.isEmpty {
            evidence.append(TokenizerCasing(lowercase: type.lowercased().contains("lowercase"), evidence: .checkpointArgs,
                                            reason: "the checkpoint's args say tokenizer_type \(type)"))
        }
        if let vocabulary {
            let cased = vocabulary.hasUppercasePieces
            evidence.append(TokenizerCasing(lowercase: !cased, evidence: .vocabulary,
                                            reason: "the vocabulary has \(cased ? "" : "no ")upper-case pieces"))
        }
        if let known = knownEmbeddingRows[embeddingRows] {
            evidence.append(TokenizerCasing(lowercase: known.lowercase, evidence: .embeddingRows,
                                            reason: "the word embeddings have \(embeddingRows) rows, the size of \(known.what)"))
        }
        guard let chosen = evidence.first else {
            return (TokenizerCasing(lowercase: false, evidence: .assumed,
                                    reason: "assumed: no args, no vocabulary and \(embeddingRows) embedding rows say either way (convert --lowercase for an uncased model)"), [])
        }
        let warnings = evidence.dropFirst().filter { $0.lowercase != chosen.lowercase }.map {
            "\($0.reason), which suggests \($0.lowercase ? "uncased" : "cased"), but \(chosen.reason): \(chosen.lowercase ? "uncased" : "cased") it is"
        }
        return (chosen, warnings)
    }
}
