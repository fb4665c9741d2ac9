import Foundation

extension BERTTokenizer {
    /// Loads the tokenizer of a Hugging Face model directory: `tokenizer.json` (WordPiece model, BERT
    /// normaliser settings) or else `vocab.txt`, with `tokenizer_config.json` for the special tokens,
    /// `model_max_length` and (without tokenizer.json) `do_lower_case`, `strip_accents`,
    /// `tokenize_chinese_chars`. Missing settings default to a cased BERT (no lowercasing).
    ///
    /// With `vocabularyFile`, that vocab.txt replaces the directory's vocabulary (which may be missing) and the
    /// settings still come from its tokenizer_config.json; when that does not say `do_lower_case`, the
    /// vocabulary decides: lowercase when it has no upper-case pieces (an uncased vocabulary).
    ///
    /// ```swift
    /// let tokenizer = try BERTTokenizer(directory: "/models/megatron-bert-cased-345m")
    /// ```
    public init(directory: String, vocabularyFile: String? = nil) throws {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        func object(_ name: String) throws -> [String: Any]? {
            guard let data = FileManager.default.contents(atPath: path(name)) else { return nil }
            guard let json = try? JSONSerialization.jsonObject(with: data), let object = json as? [String: Any] else {
                throw TokenizerError("\(path(name)) is not a JSON object")
            }
            return object
        }
        let config = try object("tokenizer_config.json") ?? [:]
        func special(_ key: String, _ fallback: String) -> String {
            if let s = config[key] as? String { return s }
            if let d = config[key] as? [String: Any], let s = d["content"] as? String { return s }
            return fallback
        }
        func flag(_ value: Any?) -> Bool? { value as? Bool }

        var doLowerCase = flag(config["do_lower_case"]) ?? false
        let overridden = try vocabularyFile.map { try Vocabulary(path: $0) }
        var stripAccents = flag(config["strip_accents"])
        var chinese = flag(config["tokenize_chinese_chars"]) ?? true
        var prefix = "##", maxChars = 100
        var unknown = special("unk_token", "[UNK]")
        var vocabulary: Vocabulary
        var added: [AddedToken] = []
        var modelCount: Int?
        if let overridden {
            vocabulary = overridden
            if flag(config["do_lower_case"]) == nil { doLowerCase = !overridden.hasUppercasePieces }
        } else if let json = try object("tokenizer.json") {
            guard let model = json["model"] as? [String: Any], model["type"] as? String == "WordPiece",
                  let map = model["vocab"] as? [String: Any]
            else {
                throw TokenizerError("\(path("tokenizer.json")): not a WordPiece tokenizer (model.type must be WordPiece with a vocab)")
            }
            var tokens = [String?](repeating: nil, count: map.count)
            for (token, value) in map {
                guard let id = value as? Int, id >= 0, id < map.count, tokens[id] == nil else {
                    throw TokenizerError("\(path("tokenizer.json")): model.vocab ids must be 0..<\(map.count), each once (\"\(token)\" has \(value))")
                }
                tokens[id] = token
            }
            // Every id in 0..<count was given exactly once above, so no slot is empty.
            vocabulary = try Vocabulary(tokens: tokens.compactMap { $0 }, source: path("tokenizer.json"))
            unknown = model["unk_token"] as? String ?? unknown
            prefix = model["continuing_subword_prefix"] as? String ?? prefix
            maxChars = model["max_input_chars_per_word"] as? Int ?? maxChars
            if let normalizer = json["normalizer"] as? [String: Any] {
                guard normalizer["type"] as? String == "BertNormalizer" else {
                    throw TokenizerError("\(path("tokenizer.json")): normalizer \(normalizer["type"] ?? "?") is not supported (BertNormalizer)")
                }
                doLowerCase = flag(normalizer["lowercase"]) ?? doLowerCase
                stripAccents = flag(normalizer["strip_accents"])
                chinese = flag(normalizer["handle_chinese_chars"]) ?? chinese
            }
            if let pre = json["pre_tokenizer"] as? [String: Any], pre["type"] as? String != "BertPreTokenizer" {
                throw TokenizerError("\(path("tokenizer.json")): pre_tokenizer \(pre["type"] ?? "?") is not supported (BertPreTokenizer)")
            }
            // Added tokens: matched whole in the raw text; ids past the model's vocabulary extend it.
            modelCount = vocabulary.count
            var extended = vocabulary.tokens
            for entry in (json["added_tokens"] as? [[String: Any]] ?? []).sorted(by: { ($0["id"] as? Int ?? 0) < ($1["id"] as? Int ?? 0) }) {
                guard let content = entry["content"] as? String, let id = entry["id"] as? Int else {
                    throw TokenizerError("\(path("tokenizer.json")): an added_tokens entry needs content and id")
                }
                for option in ["single_word", "lstrip", "rstrip"] where entry[option] as? Bool == true {
                    throw TokenizerError("\(path("tokenizer.json")): added token \"\(content)\" uses \(option), which is not supported yet")
                }
                if entry["normalized"] as? Bool == true {
                    throw TokenizerError("\(path("tokenizer.json")): added token \"\(content)\" is normalized; only normalized: false added tokens are supported yet")
                }
                if id < extended.count {
                    guard extended[id] == content else {
                        throw TokenizerError("\(path("tokenizer.json")): added token \"\(content)\" has id \(id), which the vocabulary gives to \"\(extended[id])\"")
                    }
                } else {
                    guard id == extended.count else {
                        throw TokenizerError("\(path("tokenizer.json")): added token ids must follow the vocabulary without gaps (\"\(content)\" has \(id), expected \(extended.count))")
                    }
                    extended.append(content)
                }
                added.append(AddedToken(content: content, special: entry["special"] as? Bool ?? false))
            }
            if extended.count != vocabulary.count { vocabulary = try Vocabulary(tokens: extended, source: path("tokenizer.json")) }
        } else if FileManager.default.fileExists(atPath: path("vocab.txt")) {
            vocabulary = try Vocabulary(path: path("vocab.txt"))
        } else {
            throw TokenizerError("no tokenizer in \(directory): expected tokenizer.json or vocab.txt")
        }
        try self.init(vocabulary: vocabulary, doLowerCase: doLowerCase, stripAccents: stripAccents,
                      tokenizeChineseCharacters: chinese, unknownToken: unknown, classToken: special("cls_token", "[CLS]"),
                      separatorToken: special("sep_token", "[SEP]"), padToken: special("pad_token", "[PAD]"),
                      maskToken: special("mask_token", "[MASK]"), continuingPrefix: prefix, maxInputCharactersPerWord: maxChars,
                      addedTokens: added, modelVocabularyCount: modelCount)
        // HF writes a huge sentinel (1e30) when the length is unknown.
        if let length = config["model_max_length"] as? Double, length > 0, length < 1e9 { modelMaxLength = Int(length) }
    }
}
