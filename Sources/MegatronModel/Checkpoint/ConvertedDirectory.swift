import BERTTokenizer
import Foundation
import TensorFiles

extension MegatronConversion.Result {
    /// The files a converted directory holds; a directory with anything else in it is not replaced.
    static let writtenFiles: Set<String> = ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt",
                                            "model.safetensors.partial"]

    /// Writes a Hugging Face model directory that transformers loads: config.json, model.safetensors (in `dtype`),
    /// tokenizer_config.json (`do_lower_case` as `casing(stated:vocabulary:)` decides) and, given one, vocab.txt.
    ///
    /// All or nothing: the vocabulary is checked first (readable, with BERT's special tokens, no more tokens than
    /// the model has embedding rows), the files are written into a hidden directory beside `directory` and renamed
    /// into place at the end, so an interrupted run leaves the old directory (or none), never a mix. A hidden lock
    /// file beside it (`.NAME.lock`) makes a second conversion into the same directory fail at once instead of
    /// interleaving. An existing `directory` is replaced only when it holds nothing but what a conversion writes.
    ///
    /// ```swift
    /// let converted = try MegatronConversion.load(path: "megatron_bert_345m_v0.1_cased.zip")
    /// let (casing, warnings) = try converted.write(to: "./megatron-bert-cased-345m", vocabulary: "vocab.txt")
    /// print(casing.choice, warnings)
    /// ```
    @discardableResult
    public func write(to directory: String, vocabulary: String? = nil, dtype: DType = .fp32,
                      stated: TokenizerCasing? = nil) throws -> (casing: TokenizerCasing, warnings: [String]) {
        let vocab = try vocabulary.map(checkedVocabulary)
        let decision = casing(stated: stated, vocabulary: vocab)
        try ModelDirectoryWriter(directory: directory, files: Self.writtenFiles, writer: "conversion",
                                 advice: "convert into a new or empty directory").write { staging in
            try config.jsonData().write(to: staging.appendingPathComponent("config.json"))
            try SafeTensorsFile.write(MegatronConversion.cast(tensors, to: dtype),
                                      to: staging.appendingPathComponent("model.safetensors").path, metadata: ["format": "pt"])
            if let vocabulary {
                try FileManager.default.copyItem(atPath: vocabulary, toPath: staging.appendingPathComponent("vocab.txt").path)
            }
            let tokenizer: [String: Any] = [
                "do_lower_case": decision.casing.lowercase, "tokenizer_class": "BertTokenizer",
                "model_max_length": config.maxPositionEmbeddings,
                "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
            ]
            try JSONSerialization.data(withJSONObject: tokenizer, options: [.prettyPrinted, .sortedKeys])
                .write(to: staging.appendingPathComponent("tokenizer_config.json"))
        }
        return decision
    }

    /// The vocabulary at `path`, after checking that this model can use it.
    func checkedVocabulary(_ path: String) throws -> Vocabulary {
        let vocabulary: Vocabulary
        do {
            vocabulary = try Vocabulary(path: path)
            _ = try BERTTokenizer(vocabulary: vocabulary)
        } catch let error as TokenizerError {
            throw ModelError("--vocab \(path): \(error.message)")
        }
        guard vocabulary.count <= config.vocabSize else {
            throw ModelError("the vocabulary \(path) has \(vocabulary.count) tokens but the checkpoint has only \(config.vocabSize) embedding rows: it belongs to another model")
        }
        return vocabulary
    }
}
