/// The backend's kernels in CUDA C (`Kernels/*.cu`), compiled by NVRTC at first use (no CUDA headers: FP16 and BF16
/// are converted with PTX `cvt` and bit arithmetic, so the source compiles for every architecture from sm_70 on).
///
/// Every kernel computes in FP32 and reads and writes its tensors in their element type: `float`, `f16` or `bf16`
/// (the suffixes `_f32`, `_f16`, `_bf16` of the exported names; two suffixes are input then output).
/// Shapes: rows of activations are (N, D) row-major; heads are split to (B, heads, S, dh).
enum CUDAKernelSource {
    /// The element types a kernel is instantiated for, by name suffix.
    static let elements = ["f32", "f16", "bf16"]

    /// Head sizes the fused attention kernel is instantiated for (multiples of 16, the tensor-core step).
    static let fusedHeadSizes = [16, 32, 64, 128]

    /// The fused attention kernel for element `t` ("f16" or "bf16") and head size `headSize`.
    static func fusedAttentionName(_ t: String, headSize: Int) -> String { "attention_fused_\(t)_\(headSize)" }

    /// Every exported kernel name (what `CUDAKernels` loads; the NVRTC test compiles and checks them all).
    static var kernelNames: [String] {
        var names: [String] = []
        for t in elements {
            names += ["embed_\(t)", "activate_\(t)", "activate16_\(t)", "split_heads_\(t)", "merge_heads_\(t)", "gather_rows_\(t)", "softmax_\(t)",
                      "add_bias_\(t)"]
            for u in elements {
                names += ["layer_norm_\(t)_\(u)", "convert_\(t)_\(u)"]
            }
        }
        for t in ["f16", "bf16"] {
            for d in fusedHeadSizes { names.append(fusedAttentionName(t, headSize: d)) }
        }
        return names + ["split_heads_16B", "merge_heads_16B", "pool_segments"]
    }

    /// The kernels' source as NVRTC compiles it (and the kernel cache keys it): the `.cu` files of `Kernels/`, embedded
    /// in the binary at build time by the EmbedCUDAKernels plugin (`CUDAKernelFiles`), in the order each needs the one
    /// before. scripts/check_fused_attention.py runs Kernels/fused_attention.cu on the CPU.
    static let source = [CUDAKernelFiles.kernels_cu, CUDAKernelFiles.fused_attention_mma_cuh, CUDAKernelFiles.fused_attention_cu,
                         CUDAKernelFiles.exports_cu].joined(separator: "\n")
}
