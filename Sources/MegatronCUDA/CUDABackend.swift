import Foundation
import MegatronBackend
import TensorStorage

/// The model on an NVIDIA GPU: weights uploaded once in their storage dtype (FP32, FP16 or BF16), products through
/// cuBLASLt accumulating in FP32, the rest in our NVRTC-compiled kernels computing in FP32.
///
/// Activations: the residual stream (embeddings, every layer's output, what heads read) stays FP32; out-of-place
/// LayerNorms write the compute precision and a product's output takes its input's type — except that an FP16
/// model's products all write FP16 (its logits too, as PyTorch's FP16 models) — so FP16 and BF16 models pass
/// FP16/BF16 between the products of a layer, as PyTorch's half-precision models do.
/// `--dtype fp32` is true FP32 (TF32 only with `tf32: true`). int8 is CPU-only.
///
/// ```swift
/// let backend = try CUDABackend(device: 0)
/// let model = try MegatronBERTModel(path: "/models/megatron-bert-cased-345m", dtype: .fp16, backend: backend)
/// ```
public final class CUDABackend: Backend, @unchecked Sendable {
    public let device: CUDADevice
    public let name: String
    /// Whether FP32 products may use TF32 tensor cores.
    public let tf32: Bool
    private let products: CUDAProducts
    /// Sequences' scores per attention chunk are kept under this many bytes (bounds memory at long sequences).
    static let scoresBudget = 128 << 20

    /// Opens GPU `device` (throws `CUDAUnavailable` or `CUDAError` with the reason when it cannot); `settings` choose
    /// the attention kernel, where pooling runs and whether operations are timed.
    public init(device ordinal: Int = 0, tf32: Bool = false, settings: Settings = .current) throws {
        device = try CUDADevice(ordinal: ordinal)  // first: without a GPU, `auto` falls back to the CPU whatever the choice
        fusedAttention = try Self.fusedAttention(settings)
        poolsSegments = try Self.poolsSegments(settings)
        profiling = settings[.cudaProfile] == "1"
        name = "cuda:\(ordinal)"
        self.tf32 = tf32
        products = CUDAProducts(device: device)
    }

    /// Bytes of device memory this backend's tensors and weights hold now.
    public var memoryInUse: Int { device.pool.inUse }
    /// The most bytes of device memory this backend's tensors and weights have held since `resetPeakDeviceBytes`.
    public var peakDeviceBytes: Int? { device.pool.peak }
    /// Starts a new peak (bench measures each point's own).
    public func resetPeakDeviceBytes() { device.pool.resetPeak() }

    /// int8 (dynamic quantization) has no GPU kernels here: known before a GPU is opened (`Device.open` asks).
    public static func unsupportedReason(for dtype: DType) -> String? {
        dtype == .int8 ? "--dtype int8 runs on the CPU only; on the GPU use --dtype fp16 or bf16 (or run int8 with --device cpu)" : nil
    }

    public func unsupportedReason(for dtype: DType) -> String? { Self.unsupportedReason(for: dtype) }

    /// Packed sequences with the fused attention kernel (`prefersPackedSequences`), pooling on the GPU when
    /// `MEGATRON_BERT_CUDA_POOLING=device`; its memory is its own.
    public var capabilities: BackendCapabilities {
        BackendCapabilities(packedSequences: true, prefersPackedSequences: prefersPackedSequences,
                            packedTokensPerPass: packedTokensPerPass, poolsSegments: poolsSegments, runsOnHost: false)
    }

    /// `info`: the GPU, its compute capability and memory, the driver's and libraries' versions and paths; `bench`:
    /// cuBLASLt's version and the kernels' target, and per point the GPU and its peak memory.
    public func report() -> BackendReport {
        let d = device, capability = "\(d.computeCapability.major).\(d.computeCapability.minor)"
        return BackendReport(
            fields: [("device", name), ("gpu", d.name), ("compute_capability", capability), ("gpu_memory_bytes", d.totalMemory),
                     ("driver_cuda", d.driverVersion), ("cublaslt", d.cublasLtVersion), ("nvrtc", d.nvrtcVersion),
                     ("cuda_libraries", d.libraryPaths)],
            products: "cuBLASLt \(d.cublasLtVersion), kernels \(d.kernelTarget)\(tf32 ? ", TF32" : "")",
            benchFields: [("device", "\"\(d.name)\""), ("compute_capability", "\"\(capability)\""), ("driver_cuda", "\"\(d.driverVersion)\""),
                          ("cublaslt", "\(d.cublasLtVersion)"), ("nvrtc", "\"\(d.nvrtcVersion)\""), ("tf32", "\(tf32)"),
                          ("peak_device_bytes", "\(d.pool.peak)")])
    }

    public func computePrecision(for dtype: DType) -> ComputePrecision {
        switch dtype {
        case .fp16: .fp16
        case .bf16: .bf16
        case .fp32, .int8: .fp32
        }
    }

    public func prepareMatrix(_ tensor: StoredTensor, dtype: DType, use: MatrixUse) throws -> any PreparedMatrix {
        if dtype == .int8 && use != .gather {
            throw BackendError("--dtype int8 runs on the CPU only (oneDNN's int8 products); on the GPU use --dtype fp16 or bf16, or run with --device cpu")
        }
        if dtype == .bf16 && device.computeCapability.major < 8 {
            throw BackendError("\(device.name) (sm_\(device.computeCapability.major)\(device.computeCapability.minor)) has no BF16 tensor cores: use --dtype fp16 or fp32 on it")
        }
        let stored = tensor.converted(to: dtype.storage)
        if use != .gather { modelElement = Element(dtype) }
        return try device.withContext {
            let buffer = try device.upload(stored.bytes)
            return CUDAMatrix(shape: stored.shape, dtype: dtype, element: Element(dtype), buffer: buffer)
        }
    }

    /// Uploaded on first use (so a failure surfaces as the operation's error).
    public func prepareVector(_ values: [Float]) -> any PreparedVector { CUDAVector(values: values) }

    // MARK: - Operations

    public func embed(ids: [[Int]], types: [[Int]], word: any PreparedMatrix, position: any PreparedMatrix,
                      tokenType: any PreparedMatrix) throws -> any DeviceTensor {
        let (w, p, t) = (try matrix(word), try matrix(position), try matrix(tokenType))
        let h = w.shape[1]
        let tokens = Self.embedTokens(ids: ids, types: types), n = tokens.count / 3
        return try device.withContext {
            let tokenBuffer = try tokens.withUnsafeBytes { try device.upload($0) }  // (3N)
            let out = try tensor([n, h], .f32)  // (N, H)
            try timed("embed") {
                try device.launch("embed_\(w.element.rawValue)", blocks: n, threads: Self.rowThreads(h),
                                  [.pointer(tokenBuffer.address), .pointer(w.buffer.address), .pointer(p.buffer.address),
                                   .pointer(t.buffer.address), .pointer(out.address), .int(n), .int(h)])
            }
            return out
        }
    }

    public func linear(_ x: any DeviceTensor, weight: any PreparedMatrix, bias: (any PreparedVector)?,
                       accumulateInto: (any DeviceTensor)?) throws -> any DeviceTensor {
        let x = try cuda(x), w = try matrix(weight)
        let n = x.shape[0], k = x.shape[1], m = w.shape[0]
        guard k == w.shape[1] else { throw CUDAError("internal error: a (\(n), \(k)) input for a (\(m), \(w.shape[1])) weight") }
        let accumulate = try accumulateInto.map(cuda)
        let vector = try bias.map(vectorOf)
        return try device.withContext {
            guard n > 0 else { return try accumulate ?? tensor([0, m], x.element) }
            let input = x.element == w.element ? x : try converted(x, to: w.element)  // (N, K)
            // A product's output takes its input's type, except that an FP16 model's products all write FP16 (as
            // PyTorch's FP16 models do: half the memory for the logits). BF16 keeps FP32 outputs from FP32 inputs:
            // its 8-bit mantissa would move logits of 10 by up to 0.03.
            let out = try accumulate ?? tensor([n, m], w.element == .f16 ? .f16 : x.element)  // (N, M)
            let shape = GemmShape(transA: true, transB: false, m: m, n: n, k: k, lda: k, ldb: k, ldd: m,
                                  inputs: w.element, output: out.element, tf32: tf32, bias: vector != nil)
            let biasAddresses = try vector.map { (try $0.address(in: out.element, on: device), try $0.address(in: .f32, on: device)) }
            try timed("linear \(input.element.rawValue) (\(n), \(k)) x (\(m), \(k))\(accumulate == nil ? "" : " +=")") {
                try products.run(shape, a: w.buffer.address, b: input.address, d: out.address, beta: accumulate == nil ? 0 : 1,
                                 bias: biasAddresses)
            }
            return out
        }
    }

    public func layerNorm(_ x: any DeviceTensor, residual: (any DeviceTensor)?, gamma: any PreparedVector,
                          beta: any PreparedVector, epsilon: Float, inPlace: Bool) throws -> any DeviceTensor {
        let x = try cuda(x), r = try residual.map(cuda), g = try vectorOf(gamma), bt = try vectorOf(beta)
        let rows = x.shape[0], d = x.shape[1]
        return try device.withContext {
            // The residual is read in FP32; another type is widened first.
            let residual = try r.map { $0.element == .f32 ? $0 : try converted($0, to: .f32) }
            let out = inPlace ? x : try tensor(x.shape, computeElement(for: x))
            let (gammaAddress, betaAddress) = (try g.address(in: .f32, on: device), try bt.address(in: .f32, on: device))
            try timed("layer norm (\(rows), \(d))") {
                try device.launch("layer_norm_\(x.element.rawValue)_\(out.element.rawValue)", blocks: Self.warpBlocks(rows),
                                  threads: 256, [.pointer(x.address), .pointer(residual?.address ?? 0), .pointer(gammaAddress),
                                                 .pointer(betaAddress), .pointer(out.address), .int(d), .float(epsilon), .long(rows)])
            }
            return out
        }
    }

    public func activate(_ x: any DeviceTensor, _ activation: Activation) throws {
        let x = try cuda(x)
        let code: Int
        switch activation {
        case .gelu: code = 0
        case .geluTanh: code = 1
        case .relu: code = 2
        case .tanh: code = 3
        }
        try device.withContext {
            try timed("activate (\(x.count))") {
                // 16 bytes per step where the count allows (the buffer itself is 256-byte aligned).
                let perUnit = 16 / x.element.size
                if x.count % perUnit == 0 {
                    try device.launch("activate16_\(x.element.rawValue)", blocks: CUDADevice.blocks(for: x.count / perUnit),
                                      threads: 256, [.pointer(x.address), .long(x.count / perUnit), .int(code)])
                } else {
                    try device.launch("activate_\(x.element.rawValue)", blocks: CUDADevice.blocks(for: x.count), threads: 256,
                                      [.pointer(x.address), .long(x.count), .int(code)])
                }
            }
        }
    }

    public func attention(qkv: any DeviceTensor, batch b: Int, sequence s: Int, heads: Int,
                          keep: [[Float]]) throws -> any DeviceTensor {
        let qkv = try cuda(qkv)
        let h = try attentionWidth(qkv: qkv.shape, rows: b * s, heads: heads), dh = h / heads
        let e = qkv.element
        return try device.withContext {
            let keepBuffer = try keepMask(keep)  // (B, S)
            if let kernel = fusedAttentionKernel(e, width: h, heads: heads) {
                let out = try tensor([b * s, h], e)  // (B·S, H)
                try timed("attention: fused (\(b) x \(heads) x \(s)x\(s))") {
                    try launchFused(kernel, qkv: qkv, out: out, heads: heads, longest: s, sequences: b,
                                    starts: 0, keep: keepBuffer.address, sequence: s)
                }
                return out
            }
            // (B, heads, S, dh) each
            let qh = try tensor([b * heads * s, dh], e), kh = try tensor([b * heads * s, dh], e), vh = try tensor([b * heads * s, dh], e)
            // A head's part of a row moves in 16-byte units where it is a whole number of them.
            let units = dh * e.size % 16 == 0 ? dh * e.size / 16 : nil
            try timed("attention: split heads") {
                if let units {
                    try device.launch("split_heads_16B", blocks: b * s, threads: Self.rowThreads(heads * units), gridY: 3,
                                      [.pointer(qkv.address), .pointer(qh.address), .pointer(kh.address),
                                       .pointer(vh.address), .int(s), .int(heads), .int(units)])
                } else {
                    try device.launch("split_heads_\(e.rawValue)", blocks: CUDADevice.blocks(for: b * s * h), threads: 256,
                                      [.pointer(qkv.address), .pointer(qh.address), .pointer(kh.address),
                                       .pointer(vh.address), .int(b), .int(s), .int(h), .int(heads)])
                }
            }
            let context = try tensor([b * heads * s, dh], e)  // (B, heads, S, dh)
            let chunk = max(1, min(b, Self.scoresBudget / max(1, heads * s * s * 4)))
            let scores = try tensor([chunk * heads * s, s], .f32)  // (chunk, heads, S, S)
            let probabilities = try tensor([chunk * heads * s, s], e)
            for first in stride(from: 0, to: b, by: chunk) {
                let c = min(chunk, b - first)
                let offset = first * heads * s * dh * e.size
                // scores[i, j] = q_i · k_j / √dh: D (S keys, S queries) = Kᵀ-op · Q per (sequence, head)
                try timed("attention: scores (\(c * heads) x \(s)x\(s))") {
                    try products.run(GemmShape(transA: true, transB: false, m: s, n: s, k: dh, lda: dh, ldb: dh, ldd: s,
                                               batch: c * heads, strideA: s * dh, strideB: s * dh, strideD: s * s,
                                               inputs: e, output: .f32, tf32: tf32),
                                     a: kh.address + UInt64(offset), b: qh.address + UInt64(offset), d: scores.address,
                                     alpha: 1 / Float(dh).squareRoot())
                }
                try timed("attention: softmax") {
                    try device.launch("softmax_\(e.rawValue)", blocks: Self.warpBlocks(c * heads * s), threads: 256,
                                      [.pointer(scores.address), .pointer(keepBuffer.address), .pointer(probabilities.address),
                                       .int(s), .int(heads), .int(first), .long(c * heads * s)])
                }
                // context (S queries, dh) = P V: D (dh, S queries) = V-op · P per (sequence, head)
                try timed("attention: context") {
                    try products.run(GemmShape(transA: false, transB: false, m: dh, n: s, k: s, lda: dh, ldb: s, ldd: dh,
                                               batch: c * heads, strideA: s * dh, strideB: s * s, strideD: s * dh,
                                               inputs: e, output: e, tf32: tf32),
                                     a: vh.address + UInt64(offset), b: probabilities.address, d: context.address + UInt64(offset))
                }
            }
            let out = try tensor([b * s, h], e)  // (B·S, H)
            try timed("attention: merge heads") {
                if let units {
                    try device.launch("merge_heads_16B", blocks: b * s, threads: Self.rowThreads(heads * units),
                                      [.pointer(context.address), .pointer(out.address), .int(s), .int(heads), .int(units)])
                } else {
                    try device.launch("merge_heads_\(e.rawValue)", blocks: CUDADevice.blocks(for: out.count), threads: 256,
                                      [.pointer(context.address), .pointer(out.address), .int(b), .int(s), .int(h), .int(heads)])
                }
            }
            return out
        }
    }

    /// What the embed kernel reads, in one upload: the N ids, the N types, then the N positions (each sequence's
    /// from 0), N = B·S padded or Σ lengths packed.
    static func embedTokens(ids: [[Int]], types: [[Int]]) -> [Int32] {
        var tokens = [Int32]()
        tokens.reserveCapacity(3 * ids.reduce(0) { $0 + $1.count })
        for row in ids { tokens += row.map { Int32($0) } }
        for row in types { tokens += row.map { Int32($0) } }
        for row in ids { tokens += (0..<row.count).map { Int32($0) } }
        return tokens
    }

    /// Packed sequences as a padded batch for the unfused path: the packed row each of the B·S padded rows holds (a
    /// padding row repeats its sequence's first, masked out), the keys kept (B, S), and the padded row of each packed
    /// row (to gather the context back). S is the longest segment.
    static func paddedRows(_ segments: [Range<Int>]) -> (rows: [Int], keep: [[Float]], back: [Int]) {
        let longest = segments.map(\.count).max() ?? 0
        let rows = segments.flatMap { segment in (0..<longest).map { segment.lowerBound + ($0 < segment.count ? $0 : 0) } }
        let keep = segments.map { segment in (0..<longest).map { Float($0 < segment.count ? 1 : 0) } }
        let back = segments.enumerated().flatMap { i, segment in (0..<segment.count).map { i * longest + $0 } }
        return (rows, keep, back)
    }

    // MARK: - Fused and packed attention

    /// Whether attention runs in the fused kernel (`attention_fused_*`: FP16/BF16 on tensor cores, sm_80 or newer,
    /// heads of 16, 32, 64 or 128): the default; `MEGATRON_BERT_CUDA_ATTENTION=unfused` turns it off (scores through
    /// cuBLASLt and a softmax kernel). Checked on an H200 (gpu-report 5) against the unfused path and float64: the 345M
    /// FP16 logits within 4.3e-3 of float64 (unfused 4.0e-3), BF16 3.0e-2 (3.0e-2); 128×128 FP16 659k tokens/s
    /// against 578k unfused, 32×512 535k against 439k.
    public let fusedAttention: Bool

    /// `MEGATRON_BERT_CUDA_ATTENTION`: "fused" (the default while unset) or "unfused".
    static func fusedAttention(_ settings: Settings) throws -> Bool {
        try choice(.cudaAttention, in: settings, on: "fused", off: "unfused", unset: true)
    }

    /// An on/off setting, `settings[variable]`: `on`, `off`, or unset (or empty) for `unset`; anything else is an
    /// error rather than a silent choice.
    static func choice(_ variable: Settings.Variable, in settings: Settings, on: String, off: String, unset: Bool) throws -> Bool {
        switch settings[variable] {
        case nil: return unset
        case on: return true
        case off: return false
        case let other?:
            throw CUDAError("\(variable.rawValue)=\(other) is not a choice: use \(on) or \(off) (or leave it unset for \(unset ? on : off))")
        }
    }

    /// Whether sentence embeddings pool each sequence's rows on the GPU (`pool_segments`; B vectors come back instead
    /// of N rows): `MEGATRON_BERT_CUDA_POOLING=device`. Off by default until a GPU run of scripts/gpu-check.sh (section
    /// 6b) has compared it with pooling on the host; "host" or unset: off; anything else is an error.
    public let poolsSegments: Bool

    /// `MEGATRON_BERT_CUDA_POOLING`: "device" or "host" (the default while unset).
    static func poolsSegments(_ settings: Settings) throws -> Bool {
        try choice(.cudaPooling, in: settings, on: "device", off: "host", unset: false)
    }

    /// Packing pays where the fused kernel runs: attention then costs only each sequence's own tokens.
    public var prefersPackedSequences: Bool {
        fusedAttention && device.computeCapability.major >= 8 && (modelElement == .f16 || modelElement == .bf16)
    }

    /// A GPU needs big passes to be busy: 16,384 tokens, the point (128×128) where an H100's unfused FP16
    /// throughput stopped growing (gpu-report 4: 519k tokens/s, against 251k at 8×128).
    public var packedTokensPerPass: Int { 16_384 }

    /// The fused kernel for `element` activations (N, width) in `heads` heads, or nil where it does not apply.
    private func fusedAttentionKernel(_ element: Element, width: Int, heads: Int) -> String? {
        guard fusedAttention, device.computeCapability.major >= 8, element == .f16 || element == .bf16,
              heads > 0, width % heads == 0, CUDAKernelSource.fusedHeadSizes.contains(width / heads) else { return nil }
        return CUDAKernelSource.fusedAttentionName(element.rawValue, headSize: width / heads)
    }

    /// Launches the fused kernel: qkv (N, 3H) = Q | K | V, out (N, H); sequence z is rows starts[z] ..< starts[z+1]
    /// (`starts`, a device array of Int32, or 0 for B padded rows of `sequence` tokens masked by `keep` (B, S)).
    private func launchFused(_ kernel: String, qkv: CUDATensor, out: CUDATensor, heads: Int,
                             longest: Int, sequences: Int, starts: UInt64, keep: UInt64, sequence: Int) throws {
        let h = out.shape[1], dh = h / heads, bytes = UInt64(h * qkv.element.size)
        // 16-byte loads of rows: every row start and head offset a multiple of 16 bytes (allocations are 256-aligned).
        guard bytes % 16 == 0, qkv.address % 16 == 0, out.address % 16 == 0, qkv.shape[1] == 3 * h else {
            throw CUDAError("internal error: fused attention needs 16-byte aligned rows, qkv (N, 3H) and out (N, H)")
        }
        try device.launch(kernel, blocks: (longest + 63) / 64, threads: 128, gridY: heads, gridZ: sequences,
                          [.pointer(qkv.address), .pointer(qkv.address + bytes), .pointer(qkv.address + 2 * bytes),
                           .pointer(out.address), .int(3 * h), .int(h), .pointer(starts), .pointer(keep), .int(sequence),
                           .float(1 / Float(dh).squareRoot())])
    }

    public func gatherRows(_ x: any DeviceTensor, rows: [Int]) throws -> any DeviceTensor {
        let x = try cuda(x)
        let d = x.shape[1]
        return try device.withContext {
            let out = try tensor([rows.count, d], x.element)
            guard !rows.isEmpty else { return out }
            let indices = try rows.map { Int32($0) }.withUnsafeBytes { try device.upload($0) }
            try device.launch("gather_rows_\(x.element.rawValue)", blocks: rows.count, threads: Self.rowThreads(d),
                              [.pointer(x.address), .pointer(indices.address), .pointer(out.address), .int(d)])
            return out
        }
    }

    public func download(_ x: any DeviceTensor) throws -> Tensor {
        let x = try cuda(x)
        return try device.withContext {
            let source = x.element == .f32 ? x : try converted(x, to: .f32)
            let host = Tensor(uninitializedShape: x.shape)
            try device.download(source.address, into: host.data, count: x.count * 4)
            return host
        }
    }

    public func synchronize() throws {
        try device.withContext { try device.driver.check(device.driver.cuCtxSynchronize(), "waiting for \(name)") }
    }

    // MARK: - Profile

    /// With MEGATRON_BERT_CUDA_PROFILE=1 every operation waits for the GPU and its time is added up by kind and
    /// shape (`profileReport`): where a forward pass spends its time (the waits cost some speed).
    public let profiling: Bool
    private var times: [String: (count: Int, seconds: Double)] = [:]

    /// The operations' total times so far, largest first (nil unless profiling).
    public var profile: String? {
        guard profiling else { return nil }
        let total = times.values.map(\.seconds).reduce(0, +)
        return times.sorted { $0.value.seconds > $1.value.seconds }.map {
            String(format: "%9.3f ms %5.1f%% %7d  ", $0.value.seconds * 1000, 100 * $0.value.seconds / max(total, 1e-12), $0.value.count) + $0.key
        }.joined(separator: "\n")
    }

    public func resetProfile() { times = [:] }

    /// Runs `body` (inside `withContext`), timing it to the GPU's completion when profiling.
    private func timed(_ name: @autoclosure () -> String, _ body: () throws -> Void) throws {
        guard profiling else { return try body() }
        try device.driver.check(device.driver.cuCtxSynchronize(), "profiling")
        let started = DispatchTime.now().uptimeNanoseconds
        try body()
        try device.driver.check(device.driver.cuCtxSynchronize(), "profiling")
        let key = name()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        times[key, default: (0, 0)] = (times[key, default: (0, 0)].count + 1, times[key, default: (0, 0)].seconds + seconds)
    }

    // MARK: - Helpers (called with the device's lock held where they touch the GPU)

    /// Blocks of 256 threads for a one-warp-per-row kernel over `rows` rows.
    static func warpBlocks(_ rows: Int) -> Int { max(1, (rows + 7) / 8) }

    /// Threads for a one-block-per-row kernel over `width` columns.
    static func rowThreads(_ width: Int) -> Int { min(256, max(32, (width + 31) / 32 * 32)) }

    /// The last attention mask uploaded: every layer of a forward pass gets the same one, and an upload from
    /// pageable memory waits for the GPU, so it is uploaded once per batch.
    private var lastKeep: (values: [[Float]], buffer: DeviceBuffer)?

    private func keepMask(_ keep: [[Float]]) throws -> DeviceBuffer {
        if let last = lastKeep, last.values == keep { return last.buffer }
        let buffer = try keep.flatMap { $0 }.withUnsafeBytes { try device.upload($0) }
        lastKeep = (keep, buffer)
        return buffer
    }

    /// The last packed segments' starts (B+1 Int32), uploaded once per batch like the mask.
    private var lastStarts: (segments: [Range<Int>], buffer: DeviceBuffer)?

    private func segmentStarts(_ segments: [Range<Int>]) throws -> DeviceBuffer {
        if let last = lastStarts, last.segments == segments { return last.buffer }
        let buffer = try ([0] + segments.map { Int32($0.upperBound) }).withUnsafeBytes { try device.upload($0) }
        lastStarts = (segments, buffer)
        return buffer
    }

    private func tensor(_ shape: [Int], _ element: Element) throws -> CUDATensor {
        try CUDATensor(shape: shape, element: element, pool: device.pool)
    }

    /// The element the model's products compute in: its weights' (FP32 for an FP32 model).
    private var modelElement: Element?

    private func computeElement(for x: CUDATensor) -> Element { modelElement ?? x.element }

    private func converted(_ x: CUDATensor, to element: Element) throws -> CUDATensor {
        let out = try tensor(x.shape, element)
        try device.launch("convert_\(x.element.rawValue)_\(element.rawValue)", blocks: CUDADevice.blocks(for: x.count),
                          threads: 256, [.pointer(x.address), .pointer(out.address), .long(x.count)])
        return out
    }

    private func cuda(_ x: any DeviceTensor) throws -> CUDATensor { try own(x, as: CUDATensor.self, "a tensor") }
    private func matrix(_ w: any PreparedMatrix) throws -> CUDAMatrix { try own(w, as: CUDAMatrix.self, "a weight") }
    private func vectorOf(_ v: any PreparedVector) throws -> CUDAVector { try own(v, as: CUDAVector.self, "parameters") }
}

extension CUDABackend {
    /// Sequences packed end to end: the fused kernel over each sequence's own rows where it applies; elsewhere the
    /// rows are gathered into a padded batch, run by the unfused path with its padding masked, and gathered back.
    public func attention(qkv: any DeviceTensor, segments: [Range<Int>], heads: Int) throws -> any DeviceTensor {
        let qkv = try cuda(qkv)
        let n = qkv.shape[0], longest = segments.map(\.count).max() ?? 0
        let h = try attentionWidth(qkv: qkv.shape, rows: n, heads: heads)
        guard let first = segments.first, first.lowerBound == 0, segments.last?.upperBound == n,
              zip(segments, segments.dropFirst()).allSatisfy({ $0.upperBound == $1.lowerBound }) else {
            throw CUDAError("internal error: packed segments must be consecutive and cover the \(n) rows")
        }
        if let kernel = fusedAttentionKernel(qkv.element, width: h, heads: heads) {
            return try device.withContext {
                let starts = try segmentStarts(segments)  // (B+1)
                let out = try tensor([n, h], qkv.element)  // (N, H)
                try timed("attention: fused packed (\(segments.count) sequences, \(heads) heads, longest \(longest))") {
                    try launchFused(kernel, qkv: qkv, out: out, heads: heads, longest: longest,
                                    sequences: segments.count, starts: starts.address, keep: 0, sequence: longest)
                }
                return out
            }
        }
        let (rows, keep, back) = Self.paddedRows(segments)
        let context = try attention(qkv: try gatherRows(qkv, rows: rows), batch: segments.count, sequence: longest,
                                    heads: heads, keep: keep)  // (B·S, H)
        return try gatherRows(context, rows: back)  // (N, H)
    }

    public func poolSegments(_ x: any DeviceTensor, segments: [Range<Int>], _ pooling: SegmentPooling) throws -> any DeviceTensor {
        let x = try cuda(x)
        guard x.element == .f32, x.shape.count == 2 else { throw CUDAError("internal error: pooling takes (N, H) FP32 rows, not \(x.element.rawValue) \(x.shape)") }
        try checkSegments(segments, rows: x.shape[0], for: "pooling")
        let h = x.shape[1]
        let mode: Int
        switch pooling {
        case .sum: mode = 0
        case .max: mode = 1
        case .first: mode = 2
        }
        return try device.withContext {
            let starts = try segmentStarts(segments)  // (B+1)
            let out = try tensor([segments.count, h], .f32)  // (B, H)
            try timed("pool (\(segments.count) sequences, \(x.shape[0]) rows)") {
                try device.launch("pool_segments", blocks: (h + 255) / 256, threads: 256, gridY: segments.count,
                                  [.pointer(x.address), .pointer(starts.address), .pointer(out.address), .int(h), .int(mode)])
            }
            return out
        }
    }
}
