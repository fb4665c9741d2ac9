import Foundation
import Testing
@testable import MegatronCUDA
import TestSupport

/// The kernels' source is checked on every machine, GPU or not: NVRTC (PyPI's nvidia-cuda-nvrtc wheel, which
/// scripts/test.sh installs and names in $MEGATRON_BERT_CUDA_PATH) compiles it for sm_80 and sm_90.
@Suite struct KernelCompilerTests {
    static func compiler() throws -> KernelCompiler {
        let directory = Scratch.path("megatron-cuda")
        return KernelCompiler(cacheDirectory: directory)
    }

    static func requireNVRTC() throws {
        if case .failure(let reason) = NVRTC.shared {
            Issue.record("NVRTC is needed to check the GPU kernels: \(reason). scripts/test.sh installs it (pip install nvidia-cuda-nvrtc) and sets $MEGATRON_BERT_CUDA_PATH")
            throw reason
        }
    }

    @Test(arguments: [80, 90])
    func everyKernelCompiles(architecture: Int) throws {
        try Self.requireNVRTC()
        let image = try Self.compiler().compile(CUDAKernelSource.source, architecture: architecture)
        #expect(!image.isPTX)
        #expect(image.target == "sm_\(architecture)")
        #expect(Array(image.bytes.prefix(4)) == [0x7f, 0x45, 0x4c, 0x46], "a cubin is an ELF file")
        // Every exported kernel is in the image's symbol table under its unmangled name.
        let text = String(decoding: image.bytes.map { $0 == 0 ? 10 : $0 }, as: UTF8.self)
        let symbols = Set(text.split(separator: "\n").map(String.init))
        for name in CUDAKernelSource.kernelNames {
            #expect(symbols.contains(name), "kernel \(name) missing from the sm_\(architecture) image")
        }
    }

    @Test func compiledKernelsAreCachedByKey() throws {
        try Self.requireNVRTC()
        let compiler = try Self.compiler()
        let first = try compiler.compile(CUDAKernelSource.source, architecture: 80)
        let second = try compiler.compile(CUDAKernelSource.source, architecture: 80)
        #expect(!first.cached && second.cached)
        #expect(first.bytes == second.bytes)
        // Another architecture or another source is another key.
        #expect(!(try compiler.compile(CUDAKernelSource.source, architecture: 90)).cached)
        #expect(!(try compiler.compile(CUDAKernelSource.source + "\n", architecture: 80)).cached)
    }

    @Test func aKernelThatDoesNotCompileShowsNVRTCsLog() throws {
        try Self.requireNVRTC()
        let bad = "extern \"C\" __global__ void broken(float* x) { x[0] = undeclared_name; }"
        do {
            _ = try Self.compiler().compile(bad, architecture: 80)
            Issue.record("a broken kernel compiled")
        } catch let error as CUDAError {
            #expect(error.description.contains("did not compile for sm_80"))
            #expect(error.description.contains("undeclared_name"), "NVRTC's log names the problem: \(error.description)")
        }
    }

    @Test func aGPUTooNewForNVRTCGetsPTXForTheNewestItKnows() throws {
        try Self.requireNVRTC()
        let image = try Self.compiler().compile(CUDAKernelSource.source, architecture: 990)
        #expect(image.isPTX)
        #expect(image.target.hasPrefix("compute_"))
        #expect(String(decoding: image.bytes, as: UTF8.self).contains(".entry embed_f16"))
    }

    @Test func sm60IsRefusedWithTheReason() throws {
        try Self.requireNVRTC()
        #expect(throws: CUDAUnavailable.self) { try Self.compiler().compile(CUDAKernelSource.source, architecture: 60) }
    }
}
