import Foundation
import Testing
import TensorFiles
import MegatronBERT
@testable import MegatronModel
@testable import MegatronCPU

/// `--dtype int8` (dynamic quantization) against the same model in FP32 — itself checked against transformers to
/// 1e-4 elsewhere. Quantization changes every number a little, so the bounds are on what a user sees: sentence
/// vectors (cosine ≥ 0.99 on real text with real weights), per-token hidden states of the 345M shape (cosine ≥
/// 0.99), and the top answer of the tasks (the same on ≥ 95% of generated inputs).
@Suite(.enabled(if: OneDNN.shared != nil, "int8 products need oneDNN"))
struct QuantizationTests {
    /// Cosines of the sentence vectors of `texts`, int8 against FP32.
    static func cosines(_ fp32: Pipeline, _ int8: Pipeline, _ texts: [String]) throws -> [Double] {
        let a = try fp32.embed(texts, pooling: .mean), b = try int8.embed(texts, pooling: .mean)
        return zip(a, b).map { Pipeline.cosine($0, $1) }
    }

    /// all-MiniLM-L6-v2 on 300 real sentences (Fixtures/minilm/real_sentences.json, scripts/make_real_sentences.py):
    /// every mean-pooled vector within cosine 0.99 of FP32's (measured: min 0.9968, mean 0.9989).
    @Test func miniLMSentenceVectorsKeepTheirDirection() throws {
        let path = try RealWeightsTests.miniLM()
        let fixture = Fixtures.root + "/minilm/real_sentences.json"
        let sentences = try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: fixture)))
        #expect(sentences.count == 300)
        let int8 = try Pipeline(path: path, dtype: .int8, batchSize: 16)
        #expect(int8.model.backend.computePrecision(for: int8.model.dtype) == .int8)
        let cosines = try Self.cosines(try Pipeline(path: path, batchSize: 16), int8, sentences)
        let worst = cosines.min() ?? 0, mean = cosines.reduce(0, +) / Double(max(cosines.count, 1))
        print("int8 MiniLM, \(cosines.count) real sentences: cosine to FP32 min \(worst), mean \(mean)")
        #expect(worst >= 0.99, "worst sentence cosine \(worst)")
    }

    /// The 345M Megatron-BERT shape (random weights, 24 layers): every token's last hidden state within cosine
    /// 0.99 of FP32's (measured: min 0.9998).
    @Test func the345MShapeKeepsEveryTokensDirection() throws {
        let fp32 = try MegatronBERTModel(randomWeightsFor: .megatronBERT345M, dtype: .fp32)
        let int8 = try MegatronBERTModel(randomWeightsFor: .megatronBERT345M, dtype: .int8)
        var state: UInt64 = 7
        let batch = Batch(inputIDs: (0..<2).map { _ in
            (0..<48).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return 1000 + Int(state >> 33) % (fp32.config.vocabSize - 1000)
            }
        })
        let a = try fp32.forward(batch, runHead: false).lastHiddenState, b = try int8.forward(batch, runHead: false).lastHiddenState
        let h = fp32.config.hiddenSize
        var worst = 1.0
        for token in 0..<(a.count / h) {
            let x = Array(UnsafeBufferPointer(start: a.data + token * h, count: h))
            let y = Array(UnsafeBufferPointer(start: b.data + token * h, count: h))
            worst = min(worst, Pipeline.cosine(x, y))
        }
        print("int8 345M shape, 96 tokens: worst per-token cosine to FP32 \(worst)")
        #expect(worst >= 0.99, "worst token cosine \(worst)")
        // A quarter of the memory for the products' weights.
        let held = { (m: MegatronBERTModel) in (m.layers[0].intermediate.weight as? CPUMatrix)?.heldBytes ?? 0 }
        #expect(held(int8) * 4 <= held(fp32) + 4096 * 8 * 4)
    }

    /// Texts from the task fixtures' vocabulary, `count` of them, deterministic.
    static func texts(_ count: Int, words: Int = 6, mask: Bool = false) throws -> [String] {
        let vocabulary = try String(contentsOfFile: TaskFixtures.root + "/vocab.txt", encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.hasPrefix("[") && !$0.hasPrefix("##") }
        var state: UInt64 = 2024
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % n
        }
        return (0..<count).map { _ in
            var chosen = (0..<words).map { _ in vocabulary[next(vocabulary.count)] }
            if mask { chosen[next(words)] = "[MASK]" }
            return chosen.joined(separator: " ")
        }
    }

    /// The share of `pairs` that agree.
    static func agreement<T: Equatable>(_ a: [T], _ b: [T]) -> Double {
        Double(zip(a, b).filter { $0 == $1 }.count) / Double(max(a.count, 1))
    }

    static func pipelines(_ name: String) throws -> (fp32: Pipeline, int8: Pipeline) {
        (try TaskFixtures.pipeline(name), try Pipeline(path: TaskFixtures.root + "/" + name, dtype: .int8, batchSize: 8))
    }

    /// Fill-mask, NER and classification on the tiny task models: the top answer of int8 is FP32's on ≥ 95% of
    /// 300 generated inputs each (NER: of their 1,800 tokens). Measured with VNNI: fill-mask 97.7%, NER 99.3%,
    /// classification 100%; under ONEDNN_MAX_CPU_ISA=AVX2 (no VNNI: inputs to 191, weights to ±85): 96.3%, 98.4%,
    /// 99.3%. Whole texts' NER labels all equal: 96% and 90.7% (printed, not asserted: one token of six decides).
    @Test func tasksKeepTheirTopAnswers() throws {
        let masked = try Self.texts(300, mask: true)
        let fill = try Self.pipelines("pretraining")
        let fillAgreement = Self.agreement(try fill.fp32.fillMask(masked, topK: 1).map { $0.first?.first?.token },
                                           try fill.int8.fillMask(masked, topK: 1).map { $0.first?.first?.token })

        let texts = try Self.texts(300)
        let ner = try Self.pipelines("ner")
        // NER's top answers are the tokens' labels: a token either engine labels (not "O") counts, agreeing when both
        // give it the same label (tokens both call "O" are left out, so agreement is not inflated by them).
        let (fp32Entities, int8Entities) = (try ner.fp32.entities(texts, aggregation: .none), try ner.int8.entities(texts, aggregation: .none))
        var tokens = 0, agreeing = 0
        for (a, b) in zip(fp32Entities, int8Entities) {
            let (left, right) = (Dictionary(a.map { ($0.start, $0.entity ?? "") }, uniquingKeysWith: { x, _ in x }),
                                 Dictionary(b.map { ($0.start, $0.entity ?? "") }, uniquingKeysWith: { x, _ in x }))
            for start in Set(left.keys).union(right.keys) {
                tokens += 1
                if left[start] == right[start] { agreeing += 1 }
            }
        }
        let nerAgreement = Double(agreeing) / Double(max(tokens, 1))
        let labels = { (entities: [[Entity]]) in entities.map { $0.map { "\($0.start):\($0.entity ?? "")" } } }
        let nerTexts = Self.agreement(labels(fp32Entities), labels(int8Entities))

        let classify = try Self.pipelines("classification")
        let inputs = texts.map { (text: $0, pair: String?.none) }
        let classAgreement = Self.agreement(try classify.fp32.classify(inputs).map { $0.first?.label },
                                            try classify.int8.classify(inputs).map { $0.first?.label })
        print("int8 top answers equal to FP32's: fill-mask \(fillAgreement), NER \(nerAgreement) of \(tokens) labelled tokens (whole texts \(nerTexts)), classification \(classAgreement)")
        #expect(fillAgreement >= 0.95)
        #expect(nerAgreement >= 0.95)
        #expect(classAgreement >= 0.95)
    }

    /// int8 needs oneDNN's products: asked of the OpenBLAS path it is a clear error, not a silent FP32 run.
    @Test func int8OnOpenBLASIsRefused() throws {
        #expect(throws: BackendError.self) {
            try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"), dtype: .int8,
                                  backend: CPUBackend(products: .openBLAS))
        }
    }
}
