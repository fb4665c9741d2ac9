import MegatronCPU
import Testing
@testable import MegatronCUDA

/// The host-side arithmetic of the CUDA backend that no GPU is needed to check: what the embed kernel is given, and
/// how packed sequences become a padded batch for the unfused attention path. (The kernels themselves: NVRTC in
/// KernelCompilerTests, the fused attention kernel emulated by scripts/check_fused_attention.py, the rest on a GPU by
/// scripts/gpu-check.sh.)
@Suite struct CUDABackendTests {
    @Test func embedTokensAreIdsThenTypesThenPositionsFromZeroPerSequence() {
        let tokens = CUDABackend.embedTokens(ids: [[101, 7, 102], [101, 102]], types: [[0, 0, 1], [0, 1]])
        #expect(tokens == [101, 7, 102, 101, 102, 0, 0, 1, 0, 1, 0, 1, 2, 0, 1])
        // A padded batch: every row the same length, positions 0..<S in each.
        #expect(CUDABackend.embedTokens(ids: [[1, 2], [3, 4]], types: [[0, 0], [0, 0]]).suffix(4) == [0, 1, 0, 1])
        #expect(CUDABackend.embedTokens(ids: [], types: []).isEmpty)
    }

    /// Kernel parameters as cuLaunchKernel reads them: each in its own 8-byte slot, in the kernel's type.
    @Test func kernelArgumentsFillTheirSlots() {
        let slots = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
        defer { slots.deallocate() }
        let arguments: [KernelArgument] = [.pointer(0x7f00_1234_5678), .int(-3), .long(1 << 40), .float(0.5)]
        for (i, argument) in arguments.enumerated() { argument.store(at: slots + 8 * i) }
        #expect(slots.load(as: UInt64.self) == 0x7f00_1234_5678)
        #expect(slots.load(fromByteOffset: 8, as: Int32.self) == -3)
        #expect(slots.load(fromByteOffset: 16, as: Int64.self) == 1 << 40)
        #expect(slots.load(fromByteOffset: 24, as: Float.self) == 0.5)
    }

    /// The unfused GPU path's way with packed sequences, run with the CPU's gather and padded attention: it gives the
    /// CPU's own packed attention (the reference), so the row maps put every token back where it belongs.
    @Test func thePaddedDetourGivesPackedAttention() throws {
        let cpu = CPUBackend()
        let segments = [0..<5, 5..<6, 6..<13, 13..<16]
        let n = 16, h = 8, heads = 2
        var state: UInt64 = 3
        let qkv = Tensor(shape: [n, 3 * h], values: (0..<(n * 3 * h)).map { _ in  // Q | K | V
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 40) % 2001 - 1000) / 500
        })
        let want = try cpu.download(try cpu.attention(qkv: qkv, segments: segments, heads: heads))
        let (rows, keep, back) = CUDABackend.paddedRows(segments)
        let context = try cpu.attention(qkv: try cpu.gatherRows(qkv, rows: rows), batch: segments.count, sequence: 7,
                                        heads: heads, keep: keep)
        let got = try cpu.download(try cpu.gatherRows(context, rows: back))
        #expect(got.shape == [n, h])
        let worst = (0..<(n * h)).map { abs(got.data[$0] - want.data[$0]) }.max() ?? .infinity
        #expect(worst <= 1e-6, "max |delta| \(worst)")
    }

    @Test func thePoolingChoiceIsHostDeviceOrAnError() throws {
        #expect(try CUDABackend.poolsSegments(Settings(environment: [:])) == false)  // until a GPU run has checked it
        #expect(try CUDABackend.poolsSegments(Settings(environment: ["MEGATRON_BERT_CUDA_POOLING": "host"])) == false)
        #expect(try CUDABackend.poolsSegments(Settings(environment: ["MEGATRON_BERT_CUDA_POOLING": "device"])) == true)
        #expect(throws: CUDAError.self) { try CUDABackend.poolsSegments(Settings(environment: ["MEGATRON_BERT_CUDA_POOLING": "gpu"])) }
    }

    @Test func theAttentionChoiceIsFusedUnfusedOrAnError() throws {
        #expect(try CUDABackend.fusedAttention(Settings(environment: [:])) == true)  // fused by default since the H200 run
        #expect(try CUDABackend.fusedAttention(Settings(environment: ["MEGATRON_BERT_CUDA_ATTENTION": "unfused"])) == false)
        #expect(try CUDABackend.fusedAttention(Settings(environment: ["MEGATRON_BERT_CUDA_ATTENTION": "fused"])) == true)
        do {
            _ = try CUDABackend.fusedAttention(Settings(environment: ["MEGATRON_BERT_CUDA_ATTENTION": "on"]))
            Issue.record("an unknown choice was accepted")
        } catch let error as CUDAError {
            #expect(error.description.contains("use fused or unfused"), "\(error)")
        }
    }

    @Test func packedSegmentsBecomeAPaddedBatchAndBack() {
        // Sequences of 3, 1 and 2 tokens packed in rows 0..<6.
        let segments = [0..<3, 3..<4, 4..<6]
        let (rows, keep, back) = CUDABackend.paddedRows(segments)
        // (3 sequences × 3) padded rows: each the packed row it holds, padding repeating its sequence's first row.
        #expect(rows == [0, 1, 2, 3, 3, 3, 4, 5, 4])
        #expect(keep == [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
        // Gathering `back` from the padded context returns each packed row's own padded row, in packed order.
        #expect(back == [0, 1, 2, 3, 6, 7])
        #expect(back.map { rows[$0] } == Array(0..<6), "a packed row goes out and comes back to itself")
        // Every padded row a sequence owns lies inside that sequence's own packed rows (no attention across them).
        for (i, segment) in segments.enumerated() {
            #expect(rows[(i * 3)..<(i * 3 + 3)].allSatisfy { segment.contains($0) })
        }
    }
}
