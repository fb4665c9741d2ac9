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
        let fm = FileManager.default
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let parent = target.deletingLastPathComponent(), name = target.lastPathComponent
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw ModelError(.resource, "cannot create the directory \(parent.path) for \(directory): \((error as NSError).localizedDescription)")
        }
        let lock = try DirectoryLock(parent.appendingPathComponent(".\(name).lock").path, for: directory)
        defer { lock.release() }
        // What an interrupted earlier run left: its staging directory (removed), or the old directory it had moved
        // aside just before renaming the new one in (put back, if nothing took its place).
        let leftovers = (try? fm.contentsOfDirectory(atPath: parent.path)) ?? []
        for entry in leftovers where entry.hasPrefix(".\(name).old-") && !fm.fileExists(atPath: target.path) {
            try? fm.moveItem(at: parent.appendingPathComponent(entry), to: target)
        }
        for entry in leftovers where entry.hasPrefix(".\(name).partial-") || entry.hasPrefix(".\(name).old-") {
            try? fm.removeItem(at: parent.appendingPathComponent(entry))
        }
        var isDirectory: ObjCBool = false
        let exists = fm.fileExists(atPath: target.path, isDirectory: &isDirectory)
        if exists {
            guard isDirectory.boolValue else { throw ModelError("\(directory) exists and is not a directory: choose another --output") }
            let others = try fm.contentsOfDirectory(atPath: target.path).filter { !Self.writtenFiles.contains($0) }.sorted()
            guard others.isEmpty else {
                throw ModelError("\(directory) holds files a conversion does not write (\(others.prefix(5).joined(separator: ", "))): convert into a new or empty directory")
            }
        }
        let suffix = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let staging = parent.appendingPathComponent(".\(name).partial-\(suffix)")
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch {
            throw ModelError(.resource, "cannot write into \(parent.path): \((error as NSError).localizedDescription)")
        }
        var staged = true
        defer { if staged { try? fm.removeItem(at: staging) } }
        try config.jsonData().write(to: staging.appendingPathComponent("config.json"))
        try SafeTensorsFile.write(MegatronConversion.cast(tensors, to: dtype),
                                  to: staging.appendingPathComponent("model.safetensors").path, metadata: ["format": "pt"])
        if let vocabulary {
            try fm.copyItem(atPath: vocabulary, toPath: staging.appendingPathComponent("vocab.txt").path)
        }
        let tokenizer: [String: Any] = [
            "do_lower_case": decision.casing.lowercase, "tokenizer_class": "BertTokenizer",
            "model_max_length": config.maxPositionEmbeddings,
            "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
        ]
        try JSONSerialization.data(withJSONObject: tokenizer, options: [.prettyPrinted, .sortedKeys])
            .write(to: staging.appendingPathComponent("tokenizer_config.json"))
        // Into place: the old directory aside, the new one in, the old one gone.
        if exists {
            let old = parent.appendingPathComponent(".\(name).old-\(suffix)")
            try fm.moveItem(at: target, to: old)
            do {
                try fm.moveItem(at: staging, to: target)
            } catch {
                try? fm.moveItem(at: old, to: target)
                throw error
            }
            try? fm.removeItem(at: old)
        } else {
            try fm.moveItem(at: staging, to: target)
        }
        staged = false
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

/// An exclusive lock on a file (`flock`), taken without waiting; released by `release()` or when the process ends.
final class DirectoryLock {
    private var descriptor: Int32

    init(_ path: String, for directory: String) throws {
        descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ModelError(.resource, "cannot create the lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            descriptor = -1
            throw ModelError(.resource, "another conversion is writing \(directory) right now (\(path) is locked): wait for it to finish, or write elsewhere")
        }
    }

    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
