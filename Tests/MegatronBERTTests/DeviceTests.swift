import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel
import MegatronCUDA
import TensorFiles

/// `Device`: parsing, `auto`'s fallback, and — on a machine with an NVIDIA GPU — the CUDA backend against the CPU on
/// every fixture and head (the same bounds as scripts/gpu_check.py, which runs them on the GPU machine).
@Suite struct DeviceTests {
    static let gpu: CUDABackend? = try? CUDABackend(device: 0)

    @Test func parsesEveryForm() {
        #expect(Device("auto") == .auto)
        #expect(Device("cpu") == .cpu)
        #expect(Device("cuda") == .cuda(0))
        #expect(Device("cuda:3") == .cuda(3))
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", ""] { #expect(Device(bad) == nil, "\(bad)") }
        #expect(Device.cuda(2).description == "cuda:2")
    }

    @Test func int8StaysOnTheCPU() throws {
        let (backend, note) = try Device.auto.open(dtype: .int8)
        #expect(backend is CPUBackend)
        #expect(note.contains("int8 runs on the CPU"))
        #expect(throws: ModelError.self) { try Device.cuda(0).open(dtype: .int8) }
    }

    @Test(.enabled(if: DeviceTests.gpu == nil, "this machine has a usable GPU"))
    func autoWithoutAGPUIsTheCPUWithTheReason() throws {
        let (backend, note) = try Device.auto.open(dtype: .fp32)
        #expect(backend is CPUBackend)
        #expect(note.hasPrefix("device: cpu (CUDA unavailable: "), "\(note)")
        do {
            _ = try Device.cuda(0).open(dtype: .fp32)
            Issue.record("--device cuda opened without a GPU")
        } catch let error as ModelError {
            #expect(error.message.hasPrefix("--device cuda:0: CUDA unavailable: "), "\(error.message)")
        }
    }

    /// CUDA against the CPU on every fixture model and head: FP32 within 1e-4, FP16 2e-2, BF16 8e-2 (max |Δ| per
    /// output). Skipped (with the reason) where there is no GPU; scripts/gpu-check.sh runs the same on the GPU machine.
    @Test(.enabled(if: DeviceTests.gpu != nil, "no usable NVIDIA GPU here (scripts/gpu-check.sh runs these checks on one)"),
          arguments: ["megatron-ForPreTraining", "megatron-ForQuestionAnswering", "megatron-ForMultipleChoice",
                      "megatron-Model-gelu_new", "bert-ForPreTraining", "bert-ForTokenClassification", "bert-Model-relu"])
    func cudaMatchesTheCPU(model name: String) throws {
        let gpu = try #require(Self.gpu)
        let batch = try Fixtures.batch(name.contains("MultipleChoice") ? "batch_mc" : "batch")
        for (dtype, bound) in [(DType.fp32, Float(1e-4)), (.fp16, 2e-2), (.bf16, 8e-2)] {
            let cpu = try MegatronBERTModel(path: Fixtures.model(name), dtype: dtype).forward(batch)
            let cuda = try MegatronBERTModel(path: Fixtures.model(name), dtype: dtype, backend: gpu).forward(batch)
            for (output, reference) in zip(cuda.all, cpu.all) {
                #expect(output.name == reference.name && output.tensor.shape == reference.tensor.shape)
                var worst: Float = 0
                for i in 0..<reference.tensor.count { worst = max(worst, abs(output.tensor[i] - reference.tensor[i])) }
                #expect(worst <= bound, "\(name) \(dtype) \(output.name): \(worst)")
            }
        }
    }
}
