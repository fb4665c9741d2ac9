import Foundation
import Testing
import TensorFiles
import MegatronBERT
@testable import MegatronModel

/// FP32 outputs against transformers' float64 outputs on the same weights and batch: max |Δ| ≤ 1e-4
/// on every output (the bound; measured worst ≈ 6e-6).
@Suite struct ParityTests {
    static let heads = ["Model", "ForPreTraining", "ForMaskedLM", "ForNextSentencePrediction",
                        "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering", "ForMultipleChoice"]
    static let models = ["megatron", "bert"].flatMap { arch in heads.map { "\(arch)-\($0)" } }
        + ["megatron-Model-gelu_new", "megatron-Model-gelu_pytorch_tanh", "bert-Model-relu", "bert-Model-gelu_new"]

    @Test(arguments: models)
    func everyHeadAndArchitectureMatchesTransformers(name: String) throws {
        let model = try MegatronBERTModel(path: Fixtures.model(name))
        let batch = try Fixtures.batch(name.hasSuffix("ForMultipleChoice") ? "batch_mc" : "batch")
        expectOutputs(try model.forward(batch), match: try Fixtures.expected(name), tolerance: 1e-4)
    }

    @Test func headsAreReadFromArchitectures() throws {
        for head in ModelHead.allCases {
            let model = try MegatronBERTModel(path: Fixtures.model("megatron-" + head.rawValue))
            #expect(model.head == head)
            #expect(model.config.architecture == .megatronBERT)
        }
        #expect(try MegatronBERTModel(path: Fixtures.model("bert-ForMaskedLM")).config.architecture == .bert)
    }

    @Test func defaultMaskAndTokenTypesAreOnesAndZeros() throws {
        let model = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining"))
        let batch = try Fixtures.batch("batch_defaults")
        #expect(batch.attentionMask == nil && batch.tokenTypeIDs == nil)
        expectOutputs(try model.forward(batch), match: try Fixtures.expected("megatron-ForPreTraining.batch_defaults"),
                      tolerance: 1e-4)
    }

    @Test(arguments: ["megatron-ForPreTraining-bin", "megatron-ForPreTraining-sharded"])
    func otherFileLayoutsGiveTheSameOutputs(name: String) throws {
        let model = try MegatronBERTModel(path: Fixtures.model(name))
        expectOutputs(try model.forward(try Fixtures.batch()), match: try Fixtures.expected("megatron-ForPreTraining"),
                      tolerance: 1e-4)
    }

    @Test func aSingleWeightFileCanBeNamedDirectly() throws {
        let model = try MegatronBERTModel(path: Fixtures.model("megatron-ForPreTraining") + "/model.safetensors")
        expectOutputs(try model.forward(try Fixtures.batch()), match: try Fixtures.expected("megatron-ForPreTraining"),
                      tolerance: 1e-4)
    }

    /// The same padded batch row run alone gives the same outputs at its real positions: padding
    /// is masked, not mixed in.
    @Test func paddingDoesNotLeakIntoRealTokens() throws {
        let model = try MegatronBERTModel(path: Fixtures.model("megatron-Model"))
        let batch = try Fixtures.batch()
        let padded = try model.forward(batch).lastHiddenState  // (3, 7, H)
        let alone = try model.forward(Batch(inputIDs: [Array(batch.inputIDs[1].prefix(4))],
                                            tokenTypeIDs: [Array(batch.tokenTypeIDs![1].prefix(4))])).lastHiddenState
        let h = model.config.hiddenSize
        var worst: Float = 0
        for j in 0..<4 { for k in 0..<h { worst = max(worst, abs(padded[(7 + j) * h + k] - alone[j * h + k])) } }
        #expect(worst < 1e-5)
    }
}
