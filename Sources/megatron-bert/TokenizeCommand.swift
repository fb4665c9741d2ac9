import ArgumentParser
import BERTTokenizer
import Foundation

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize text as Hugging Face's BertTokenizerFast does; one JSON line per input.",
        discussion: """
        The tokenizer comes from --model DIR (tokenizer.json, or vocab.txt, with tokenizer_config.json) or from \
        --vocab FILE (a cased vocab.txt; add --lowercase for an uncased one). Each output line holds input_ids, \
        token_type_ids, attention_mask, tokens and offsets (character ranges [start, end) in the input text, \
        [0, 0] for [CLS]/[SEP]).

        Examples:
          megatron-bert tokenize --vocab vocab/megatron-bert-cased-vocab.txt "The capital of France is [MASK]."
          megatron-bert tokenize --model DIR --pair "It is Paris." "Where is the Eiffel Tower?"
          megatron-bert tokenize --model DIR --input texts.jsonl      # lines {"text": ..., "text_pair": ...}
        """
    )

    @Option(help: "Model or tokenizer directory (tokenizer.json or vocab.txt, tokenizer_config.json).")
    var model: String?

    @Option(help: "A vocab.txt to use instead of --model.")
    var vocab: String?

    @Flag(help: "With --vocab: lowercase and strip accents (uncased vocabularies).")
    var lowercase = false

    @Option(help: "Second text of a pair.")
    var pair: String?

    @Option(parsing: .unconditional, help: "Most tokens per input, special tokens included (default: the model's model_max_length, if known).")
    var maxLength: Int?

    @Option(help: "longest_first, only_first, only_second or do_not_truncate.")
    var truncation: String = "longest_first"

    @Option(help: "A JSON Lines file of {\"text\": ..., \"text_pair\": ...} ('-' for standard input).")
    var input: String?

    @Flag(help: "With --input: time the tokenizer on the file's texts (after reading them) and print MB/s instead of the tokens.")
    var benchmark = false

    @Argument(help: "Text to tokenize.")
    var text: String?

    func validate() throws {
        guard (model == nil) != (vocab == nil) else { throw ValidationError("give exactly one of --model DIR or --vocab FILE") }
        guard (input == nil) != (text == nil) else { throw ValidationError("give a TEXT argument or --input FILE, not both or neither") }
        guard TruncationStrategy(rawValue: truncation) != nil else {
            throw ValidationError("--truncation must be one of " + TruncationStrategy.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if input != nil && pair != nil { throw ValidationError("--pair goes with a TEXT argument; in --input files use \"text_pair\"") }
        if benchmark && input == nil { throw ValidationError("--benchmark needs --input FILE") }
    }

    struct Line: Encodable {
        var input_ids: [Int]
        var token_type_ids: [Int]
        var attention_mask: [Int]
        var tokens: [String]
        var offsets: [[Int]]
    }

    func run() throws {
        try reportingErrors {
            let tokenizer: BERTTokenizer
            if let model {
                tokenizer = try BERTTokenizer(directory: model)
            } else if let vocab {
                tokenizer = try BERTTokenizer(vocabulary: Vocabulary(path: vocab), doLowerCase: lowercase)
            } else {
                throw CommandError("give --model DIR or --vocab FILE")
            }
            guard let strategy = TruncationStrategy(rawValue: truncation) else {
                throw CommandError("--truncation must be one of " + TruncationStrategy.allCases.map(\.rawValue).joined(separator: ", "))
            }
            let limit = maxLength ?? tokenizer.modelMaxLength
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            func emit(_ text: String, _ pair: String?) throws {
                let e = try tokenizer.encode(text, pair: pair, maxLength: limit, truncation: strategy)
                let line = Line(input_ids: e.ids, token_type_ids: e.typeIDs, attention_mask: e.attentionMask,
                                tokens: e.tokens, offsets: e.offsets.map { [$0.lowerBound, $0.upperBound] })
                Console.line(String(decoding: try encoder.encode(line), as: UTF8.self))
            }
            if let text {
                try emit(text, pair)
                return
            }
            guard let input else { throw CommandError("give a TEXT argument or --input FILE") }
            let reader = try JSONLinesReader(path: input)
            var items: [(text: String, pair: String?)] = []
            while let object = try reader.next() {
                let item = (text: try object.text("text", reader), pair: try object.optionalText("text_pair", reader))
                if benchmark { items.append(item) } else { try emit(item.text, item.pair) }
            }
            if benchmark {
                let bytes = items.reduce(0) { $0 + $1.text.utf8.count + ($1.pair?.utf8.count ?? 0) }
                let start = Date()
                var tokens = 0
                for item in items { tokens += try tokenizer.encode(item.text, pair: item.pair, maxLength: limit, truncation: strategy).count }
                let seconds = Date().timeIntervalSince(start)
                Console.line(String(format: "%d texts, %.2f MB, %d tokens in %.3f s: %.2f MB/s (one thread)", items.count,
                             Double(bytes) / 1e6, tokens, seconds, Double(bytes) / 1e6 / seconds))
            }
        }
    }
}
