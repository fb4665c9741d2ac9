import CAttention
import CDNNL
import COpenBLAS
import CSmallProducts
import Foundation
import TensorStorage

/// The reference backend, on the CPU: matrix products through oneDNN on weights packed once at load (or through
/// OpenBLAS, single-threaded per call and split across cores here), our own vectorised kernels for the rest.
/// FP32 and FP16 weights multiply in FP32 (FP16 widened when packed); BF16 weights multiply in BF16 where the CPU
/// has BF16 dot products (AVX512_BF16 or AMX), accumulating in FP32, and in FP32 elsewhere.
///
/// ```swift
/// let model = try MegatronBERTModel(path: "/models/megatron-bert-cased-345m", backend: CPUBackend())
/// ```
public final class CPUBackend: Backend, @unchecked Sendable {
    public let name = "cpu"
    /// Query rows per attention block: (128, 512) scores are 256 KB, inside a core's L2.
    public let queryBlock: Int
    /// Where the matrix products run.
    public let products: Products
    /// The vector width (floats) of the attention kernel: 16 (AVX-512), 8 (AVX2 + FMA), or 0 for attention through
    /// OpenBLAS (CPUs with neither, and `attentionLanes: 0`).
    public let attentionLanes: Int
    /// Elements of a half-precision weight widened per SGEMM call (bounds each core's scratch to 4 MB).
    static let widenBlockElements = 1 << 20

    /// The library behind the matrix products.
    public enum Products: String, Sendable, CaseIterable {
        /// oneDNN on weights packed once (the default where it starts).
        case oneDNN = "onednn"
        /// OpenBLAS SGEMM, half-precision weights widened per block.
        case openBLAS = "openblas"

        /// `MEGATRON_BERT_PRODUCTS` (onednn or openblas) when set, else oneDNN where it starts, else OpenBLAS.
        public static func preferred(_ settings: Settings = .current) -> Products {
            if let name = settings[.products], let chosen = Products(rawValue: name) {
                return chosen == .oneDNN && OneDNN.shared == nil ? .openBLAS : chosen
            }
            return OneDNN.shared == nil ? .openBLAS : .oneDNN
        }
    }

    /// The CPU backend; `queryBlock` sets the attention's query rows per block (the tests vary it), `products` the
    /// library behind the matrix products; `attentionLanes` the attention kernel's vector width (16 or 8; the widest
    /// this CPU runs when nil or wider than that; 0: attention through OpenBLAS).
    public init(queryBlock: Int = 128, products: Products = .preferred(), attentionLanes: Int? = nil) {
        _ = Runtime.configured
        self.queryBlock = max(1, queryBlock)
        self.products = products == .oneDNN && OneDNN.shared == nil ? .openBLAS : products
        let widest = Self.widestAttentionLanes
        self.attentionLanes = attentionLanes.map { [0, 8, 16].contains($0) && $0 <= widest ? $0 : widest } ?? widest
    }

    /// The attention kernel's widest vector this CPU runs, kept to oneDNN's instruction-set cap (`DNNL_MAX_CPU_ISA`)
    /// as the product kernels are, so that a capped run measures the smaller CPU: 16 only where oneDNN runs AVX-512.
    static let widestAttentionLanes: Int = min(Int(mb_attention_width()), OneDNN.shared?.vectorLanes ?? .max)

    /// Whether this CPU multiplies BF16 pairs in hardware (AVX512_BF16 or AMX, as oneDNN dispatches): then BF16
    /// weights multiply in BF16.
    public static var hasBFloat16Products: Bool { OneDNN.shared?.hasBFloat16 ?? false }

    public func computePrecision(for dtype: DType) -> ComputePrecision {
        switch dtype {
        case .int8: .int8
        case .bf16 where products == .oneDNN && Self.hasBFloat16Products: .bf16
        default: .fp32
        }
    }

    /// The libraries behind the products, for `info`: e.g. "oneDNN 2.6.3 (avx512_core_amx)" or "OpenBLAS (SkylakeX)";
    /// where BF16 weights multiply in FP32 from `OneDNN.widenRows` rows on, it says so.
    public var kernels: String {
        guard products == .oneDNN, let onednn = OneDNN.shared else { return "OpenBLAS (\(Runtime.openBLASCore))" }
        let widened = onednn.widensBF16 && onednn.hasBFloat16 ? "; bf16 weights multiplied in fp32 from \(OneDNN.widenRows) rows" : ""
        return "oneDNN \(onednn.version) (\(onednn.isaName)\(widened))"
    }

    /// The attention's kernel, for `info` and `bench`: "avx512" or "avx2" (our kernel at that width) or "openblas".
    public var attentionKernel: String { attentionLanes == 16 ? "avx512" : attentionLanes == 8 ? "avx2" : "openblas" }

    /// The vector code of int8's run-time quantization and int32 → FP32 epilogue (`QuantizedRows`), for `info`:
    /// "avx512", "avx2" or "c"; kept to oneDNN's cap as the attention is.
    public var int8RowsKernel: String { ["c", "avx2", "avx512"][Int(QuantizedRows.widest)] }

    /// The kernels that have run products so far, for `bench`: oneDNN's implementation names (e.g.
    /// "brg:avx512_core_amx_int8"; "fp32-on-bf16:brg:avx512_core" for BF16 weights widened to FP32), "openblas:<core>"
    /// when OpenBLAS ran any, "small:avx2" when the small-product kernel did, "panel:avx512", "panel:avx512_vnni",
    /// "panel:avx512_bf16", "fp32-on-bf16:panel:avx512" and "panel:avx2_int8" when the panel kernels did.
    public var kernelsUsed: [String] {
        (products == .oneDNN ? OneDNN.shared?.kernelsUsed ?? [] : []) + (ranOpenBLAS.isSet ? ["openblas:" + Runtime.openBLASCore] : [])
            + (ranSmallProducts.isSet ? ["small:avx2"] : [])
    }

    private let ranOpenBLAS = ManagedAtomicFlag(), ranSmallProducts = ManagedAtomicFlag()

    /// FP32 products of at most this many rows on plain weights run through the small-product kernel (AVX2 + FMA)
    /// instead of OpenBLAS: where oneDNN has no pre-packed kernels (below AVX-512) and with `products: .openBLAS`.
    static let smallProductRows = 16
    /// Whether this CPU runs the small-product kernel (AVX2 and FMA).
    static let hasSmallProducts = mb_small_products_available()

    // A model's tensors and weights come from its own backend; a library user mixing two backends gets an error.
    private func host(_ x: any DeviceTensor) throws -> Tensor { try own(x, as: Tensor.self, "a tensor") }
    private func matrix(_ w: any PreparedMatrix) throws -> CPUMatrix { try own(w, as: CPUMatrix.self, "a weight") }
    private func vector(_ v: any PreparedVector) throws -> [Float] { try own(v, as: CPUVector.self, "parameters").values }

    // MARK: - What it can do, and what it reports

    /// Every precision runs here, int8 where the products run on oneDNN.
    public func unsupportedReason(for dtype: DType) -> String? {
        guard dtype == .int8, products != .oneDNN else { return nil }
        return "int8 products need oneDNN, and this backend multiplies with \(products.rawValue) (MEGATRON_BERT_PRODUCTS=\(products.rawValue)?): unset it or choose --dtype fp32, fp16 or bf16"
    }

    /// Packed sequences always pay on the CPU (every product but attention costs only the real tokens), and pooling
    /// there costs nothing more than on the host. 2,048 tokens per pass: measured on 2 cores (`bench`, MiniLM), 32
    /// sequences of 32 tokens run ~1.3× faster per token than 8; the embed job (MiniLM and 345M) took the same time,
    /// within the machine's ±10% noise, with passes of 512 to 4,096 tokens.
    public var capabilities: BackendCapabilities {
        BackendCapabilities(packedSequences: true, prefersPackedSequences: true, packedTokensPerPass: 2048, poolsSegments: true,
                            runsOnHost: true)
    }

    /// `info`: the products' library and ISA, the attention kernel, int8's row kernels; `bench`: the first two.
    public func report() -> BackendReport {
        BackendReport(fields: [("device", "cpu"), ("cpu_products", kernels), ("cpu_attention", attentionKernel),
                               ("cpu_int8_rows", int8RowsKernel)],
                      products: "\(kernels), attention: \(attentionKernel)")
    }

    // MARK: - Weights

    /// Plain rows are kept in place when the file stores `dtype` already (a memory-mapped safetensors file is then
    /// used as it is), else converted once (`StoredTensor.converted`). With oneDNN, a matrix multiplied by is packed
    /// once into oneDNN's layout (FP32; BF16 when `computePrecision(for: .bf16)` is BF16; int8 for `.int8`), and its
    /// plain rows are kept only when they are gathered too (in FP32 for `.int8`).
    public func prepareMatrix(_ tensor: StoredTensor, dtype: DType, use: MatrixUse) throws -> any PreparedMatrix {
        if use != .gather, let why = unsupportedReason(for: dtype) { throw BackendError(why) }
        // Below AVX-512 oneDNN has no kernels on pre-packed FP32 weights: there a half-precision weight multiplied in
        // FP32 is widened once, here, and kept plain as FP32 weights are (for the small-product kernel and OpenBLAS),
        // so fp16 and bf16 run as fast as fp32.
        let plainFP32 = use != .gather && products == .oneDNN && dtype != .int8 && computePrecision(for: dtype) == .fp32
            && !(OneDNN.shared?.prepacksFP32 ?? true)
        let held = plainFP32 ? StorageDType.float32 : dtype.storage
        var t = tensor.converted(to: dtype.storage)  // rounded to the precision asked for (an FP32 file at --dtype fp16)
        if plainFP32 { t = t.converted(to: held) }
        // Kept in place only when aligned for its element type (and not empty); else in an aligned copy.
        let elementSize = held.size
        if t.bytes.baseAddress.map({ Int(bitPattern: $0) % elementSize != 0 }) ?? true { t = t.copied() }
        guard let pointer = t.bytes.baseAddress else {
            throw TensorFileError(path: "", "internal error: a weight of shape \(t.shape) has no storage")
        }
        let storage: CPUMatrix.Storage
        switch held {
        case .float16: storage = .fp16(pointer.assumingMemoryBound(to: UInt16.self))
        case .bfloat16: storage = .bf16(pointer.assumingMemoryBound(to: UInt16.self))
        default: storage = .fp32(pointer.assumingMemoryBound(to: Float.self))
        }
        var packed: OneDNNMatrix?
        if use != .gather, products == .oneDNN, let onednn = OneDNN.shared, t.shape.count == 2 {
            let (n, k) = (t.shape[0], t.shape[1])
            switch (dtype, computePrecision(for: dtype)) {
            case (.int8, _):
                packed = onednn.quantize(pointer.assumingMemoryBound(to: Float.self), n: n, k: k)
                guard packed != nil else {
                    throw BackendError("oneDNN has no int8 kernel for a (\(n), \(k)) weight on this CPU (\(onednn.isaName)); choose --dtype fp32, fp16 or bf16")
                }
            case (_, .bf16): packed = onednn.pack(pointer, sourceType: dnnl_bf16, n: n, k: k, precision: .bf16)
            case _ where plainFP32:
                break  // kept plain in FP32: OpenBLAS, or the small-product kernel for few rows
            case (.fp32, _): packed = onednn.pack(pointer, sourceType: dnnl_f32, n: n, k: k, precision: .fp32)
            default:  // FP16 (or BF16 without BF16 products): widened once, multiplied in FP32
                let widened = UnsafeMutablePointer<Float>.allocate(capacity: max(n * k, 1))
                defer { widened.deallocate() }
                let plain = CPUMatrix(shape: t.shape, dtype: dtype, storage: storage, owner: t.owner, packed: nil)
                plain.widen(from: 0, count: n * k, into: widened)
                packed = onednn.pack(widened, sourceType: dnnl_f32, n: n, k: k, precision: .fp32)
            }
        }
        let keepPlain = packed == nil || use == .productAndGather
        if !keepPlain { t.releasePages() }
        return CPUMatrix(shape: t.shape, dtype: dtype, storage: keepPlain ? storage : nil, owner: keepPlain ? t.owner : nil,
                         packed: packed)
    }

    public func prepareVector(_ values: [Float]) -> any PreparedVector { CPUVector(values) }

    // MARK: - Operations

    public func embed(ids: [[Int]], types: [[Int]], word: any PreparedMatrix, position: any PreparedMatrix,
                      tokenType: any PreparedMatrix) throws -> any DeviceTensor {
        let word = try matrix(word), position = try matrix(position), tokenType = try matrix(tokenType)
        let h = word.shape[1]
        let out = Tensor(uninitializedShape: [ids.reduce(0) { $0 + $1.count }, h])  // (B·S, H), or (Σ lengths, H) packed
        let row = UnsafeMutablePointer<Float>.allocate(capacity: h)
        defer { row.deallocate() }
        var next = 0
        for i in ids.indices {
            for j in ids[i].indices {
                let o = out.data + next * h
                next += 1
                word.widen(from: ids[i][j] * h, count: h, into: o)
                position.widen(from: j * h, count: h, into: row)
                Kernels.add(row, into: o, count: h)
                tokenType.widen(from: types[i][j] * h, count: h, into: row)
                Kernels.add(row, into: o, count: h)
            }
        }
        return out
    }

    public func linear(_ x: any DeviceTensor, weight: any PreparedMatrix, bias: (any PreparedVector)?,
                       accumulateInto: (any DeviceTensor)?) throws -> any DeviceTensor {
        try linear(x, weight: weight, bias: bias, accumulateInto: accumulateInto, activation: nil)
    }

    public func linear(_ x: any DeviceTensor, weight: any PreparedMatrix, bias: (any PreparedVector)?,
                       activation: Activation) throws -> any DeviceTensor {
        try linear(x, weight: weight, bias: bias, accumulateInto: nil, activation: activation)
    }

    /// y = [act](x Wᵀ + b) [+ y]: oneDNN applies the activation inside products split by rows (`OneDNN.multiply`);
    /// elsewhere it follows the product.
    private func linear(_ x: any DeviceTensor, weight: any PreparedMatrix, bias: (any PreparedVector)?,
                        accumulateInto: (any DeviceTensor)?, activation: Activation?) throws -> Tensor {
        let x = try host(x), w = try matrix(weight)
        let n = w.shape[0], k = w.shape[1], rows = x.count / max(k, 1)
        let y = try accumulateInto.map(host) ?? Tensor(uninitializedShape: [rows, n])
        let b = try bias.map(vector)
        let activated = b.withUnsafeBufferPointerOrNil { bias -> Bool in
            if let packed = w.packed, rows > 0, OneDNN.shared?.multiply(x.data, rows: rows, matrix: packed, bias: bias,
                                                                        accumulate: accumulateInto != nil, into: y.data,
                                                                        activation: activation) == true {
                return true
            }
            product(x.data, rows: rows, weight: w, bias: bias, accumulate: accumulateInto != nil, into: y.data)
            return false
        }
        if !activated, let activation { try activate(y, activation) }
        return y
    }

    /// y (rows, n) = x (rows, k) · Wᵀ [+ bias] [+ y when accumulating].
    private func product(_ x: UnsafePointer<Float>, rows: Int, weight: CPUMatrix, bias: UnsafePointer<Float>?,
                         accumulate: Bool, into y: UnsafeMutablePointer<Float>) {
        let n = weight.shape[0], k = weight.shape[1]
        guard rows > 0 else { return }
        if case .fp32(let w)? = weight.storage, rows <= Self.smallProductRows, Self.hasSmallProducts {
            // Each core reads its columns' weight rows once, front to back: BLAS would repack them on every call.
            if !ranSmallProducts.isSet { ranSmallProducts.set() }
            Parallel.forEach((n + 63) / 64, minimumPerThread: 4) { tiles in
                let first = tiles.lowerBound * 64, count = min(n, tiles.upperBound * 64) - first
                mb_small_product_f32(x, Int32(rows), Int32(k), w, Int32(first), Int32(count), bias, accumulate, y, Int32(n))
            }
            return
        }
        if !ranOpenBLAS.isSet { ranOpenBLAS.set() }
        guard weight.storage != nil else {
            // oneDNN refused this product shape for a weight it keeps only packed: unpack it for this product.
            let plain = UnsafeMutablePointer<Float>.allocate(capacity: n * k)
            defer { plain.deallocate() }
            guard let packed = weight.packed, OneDNN.shared?.unpack(packed, into: plain) == true else {
                preconditionFailure("internal error: a packed weight (\(n) x \(k)) could not be unpacked")
            }
            Matmul.multiplyTransposed(m: rows, n: n, k: k, x, lda: k, plain, ldb: k, bias: bias, accumulate: accumulate, y, ldc: n)
            return
        }
        if case .fp32(let w)? = weight.storage {
            Matmul.multiplyTransposed(m: rows, n: n, k: k, x, lda: k, w, ldb: k, bias: bias, accumulate: accumulate, y, ldc: n)
            return
        }
        // Half-precision weights: each core widens its own blocks of output rows and multiplies them.
        let block = max(16, min((n + Parallel.cores - 1) / Parallel.cores, Self.widenBlockElements / max(k, 1)))
        let blocks = (n + block - 1) / block
        Parallel.forEach(blocks) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
            defer { scratch.deallocate() }
            for index in range {
                let start = index * block, m = min(block, n - start)
                weight.widen(from: start * k, count: m * k, into: scratch)
                Matmul.multiplyBlock(m: rows, columns: start..<(start + m), k: k, x, lda: k, scratch, ldb: k,
                                     bias: bias, accumulate: accumulate, y, ldc: n)
            }
        }
    }

    public func layerNorm(_ x: any DeviceTensor, residual: (any DeviceTensor)?, gamma: any PreparedVector,
                          beta: any PreparedVector, epsilon: Float, inPlace: Bool) throws -> any DeviceTensor {
        let x = try host(x), g = try vector(gamma), b = try vector(beta)
        if let residual { Kernels.add(try host(residual).data, into: x.data, count: x.count) }
        let out = inPlace ? x : Tensor(uninitializedShape: x.shape)
        let rows = x.count / max(g.count, 1)
        if products == .oneDNN, rows > 0, let onednn = OneDNN.shared,
           g.withUnsafeBufferPointer({ g in b.withUnsafeBufferPointer { b in
               onednn.layerNorm(x.data, rows: rows, width: g.count, gamma: g.baseAddress!, beta: b.baseAddress!, epsilon: epsilon, into: out.data)
           } }) {
            return out
        }
        Kernels.layerNorm(x.data, rows: rows, width: g.count, gamma: g, beta: b, epsilon: epsilon, into: out.data)
        return out
    }

    public func activate(_ x: any DeviceTensor, _ activation: Activation) throws {
        let x = try host(x)
        if products == .oneDNN, x.count > 0, OneDNN.shared?.activate(x.data, count: x.count, activation) == true { return }
        Kernels.activate(x.data, count: x.count, activation)
    }

    public func attention(qkv: any DeviceTensor, batch b: Int, sequence s: Int, heads: Int,
                          keep: [[Float]]) throws -> any DeviceTensor {
        // Keys per sequence: a right-padded sequence (its mask ones, then zeros) attends over its n real keys only,
        // so its numbers are the same bits as when it runs alone, whatever else shares the batch (batch
        // invariance: a job split across workers gives the output of one process); other masks keep all S keys.
        try attend(qkv, heads: heads, rows: b * s, sequences: (0..<b).map {
            AttendedSequence(start: $0 * s, rows: s, keys: Self.paddedLength(keep[$0]) ?? s, keep: keep[$0])
        })
    }

    public func attention(qkv: any DeviceTensor, segments: [Range<Int>], heads: Int) throws -> any DeviceTensor {
        try checkSegments(segments, rows: (qkv as? Tensor)?.shape.first ?? 0, for: "packed attention")
        let ones = [Float](repeating: 1, count: segments.map(\.count).max() ?? 0)
        return try attend(qkv, heads: heads, rows: segments.last?.upperBound ?? 0, sequences: segments.map {
            AttendedSequence(start: $0.lowerBound, rows: $0.count, keys: $0.count, keep: ones)
        })
    }

    /// One sequence's rows in the (rows, H) activations: `rows` rows from `start`, of which the first `keys` are
    /// the keys it attends over (the rest padding); `keep` (≥ keys) masks those keys.
    struct AttendedSequence {
        var start: Int, rows: Int, keys: Int
        var keep: [Float]
    }

    /// Attention of each sequence over its own keys: qkv (rows, 3H) = Q | K | V → context (rows, H).
    private func attend(_ qkv: any DeviceTensor, heads: Int, rows total: Int,
                        sequences: [AttendedSequence]) throws -> any DeviceTensor {
        let qkv = try host(qkv)
        let h = try attentionWidth(qkv: qkv.shape, rows: total, heads: heads), ld = 3 * h, d = h / heads  // rows ld apart
        let q = qkv.data, k = qkv.data + h, v = qkv.data + 2 * h
        let context = Tensor(uninitializedShape: [total, h])  // (rows, H)
        let scale = 1 / Float(d).squareRoot()
        // Query rows go in blocks so a block's scores (block, keys) stay in the core's cache through
        // the softmax and the product with V.
        let longest = sequences.map(\.rows).max() ?? 0
        let block = max(1, min(longest, queryBlock))
        if attentionLanes > 0 {
            // One call per (sequence, head): its keys packed once, the scores of `block` queries at a time in cache.
            let workBytes = mb_attention_work_floats(Int32(longest), Int32(longest), Int32(d), Int32(block), Int32(attentionLanes))
                * MemoryLayout<Float>.stride
            Parallel.forEach(sequences.count * heads) { pairs in
                let work = UnsafeMutableRawPointer.allocate(byteCount: max(workBytes, 64), alignment: 64)
                defer { work.deallocate() }
                for pair in pairs {
                    let sequence = sequences[pair / heads], head = pair % heads
                    let offset = sequence.start * ld + head * d, target = sequence.start * h + head * d
                    sequence.keep.withUnsafeBufferPointer {
                        mb_attention_f32(q + offset, k + offset, v + offset, ld, Int32(sequence.rows), Int32(sequence.keys), Int32(d),
                                         scale, $0.baseAddress!, context.data + target, h, Int32(block), Int32(attentionLanes),
                                         work.assumingMemoryBound(to: Float.self))
                    }
                }
            }
            return context
        }
        Parallel.forEach(sequences.count * heads) { pairs in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * longest)  // (block, keys)
            let inverseSums = UnsafeMutablePointer<Float>.allocate(capacity: block)  // (block)
            defer { scores.deallocate(); inverseSums.deallocate() }
            for pair in pairs {
                let sequence = sequences[pair / heads], head = pair % heads
                // Its first row's columns head·d ..< head·d + d, in qkv (ld apart) and in the context (h apart).
                let offset = sequence.start * ld + head * d, target = sequence.start * h + head * d
                let n = sequence.keys, s = sequence.rows
                // The real rows in blocks from 0, then the padding rows in blocks from n: a real row's products are
                // the same calls (same shapes) as when its sequence runs alone, padded or packed.
                var first = 0
                while first < s {
                    let rows = min(block, (first < n ? n : s) - first)
                    let queries = offset + first * ld, contexts = target + first * h
                    // scores = scale · Q_ih[first..<first+rows] K_ih[..<n]ᵀ   (rows, d) x (d, n)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(d),
                                scale, q + queries, Int32(ld), k + offset, Int32(ld), 0, scores, Int32(n))
                    sequence.keep.withUnsafeBufferPointer {
                        Kernels.softmaxNumerators(scores, rows: rows, width: n, keep: $0.baseAddress!, inverseSums: inverseSums)
                    }
                    // context rows = E V_ih[..<n]   (rows, n) x (n, d), then each row divided by its softmax sum
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(d), Int32(n),
                                1, scores, Int32(n), v + offset, Int32(ld), 0, context.data + contexts, Int32(h))
                    for row in 0..<rows {
                        let out = context.data + contexts + row * h
                        let factor = inverseSums[row]
                        for j in 0..<d { out[j] *= factor }
                    }
                    first += rows
                }
            }
        }
        return context
    }

    /// The number of leading ones of a mask that is ones then zeros (at least one one), else nil.
    static func paddedLength(_ keep: [Float]) -> Int? {
        guard let n = keep.firstIndex(where: { $0 == 0 }) else { return keep.isEmpty ? nil : keep.count }
        return n > 0 && keep[n...].allSatisfy({ $0 == 0 }) && keep[..<n].allSatisfy({ $0 == 1 }) ? n : nil
    }

    public func gatherRows(_ x: any DeviceTensor, rows: [Int]) throws -> any DeviceTensor {
        let x = try host(x)
        let width = x.shape.last ?? 0
        let out = Tensor(uninitializedShape: [rows.count, width])  // (rows.count, D)
        for (i, r) in rows.enumerated() {
            (out.data + i * width).update(from: x.data + r * width, count: width)
        }
        return out
    }

    public func download(_ x: any DeviceTensor) throws -> Tensor { try host(x) }

    public func poolSegments(_ x: any DeviceTensor, segments: [Range<Int>], _ pooling: SegmentPooling) throws -> any DeviceTensor {
        let x = try host(x)
        let h = x.shape.last ?? 0
        try checkSegments(segments, rows: x.shape.first ?? 0, for: "pooling")
        let out = Tensor(uninitializedShape: [segments.count, h])  // (B, H)
        Parallel.forEach(segments.count) { range in
            for (b, segment) in zip(range, segments[range]) {
                pooling.pool(x.data + segment.lowerBound * h, rows: segment.count, width: h, into: out.data + b * h)
            }
        }
        return out
    }
}

extension Optional where Wrapped == [Float] {
    /// Calls `body` with the array's base address, or nil.
    func withUnsafeBufferPointerOrNil<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let array): array.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: body(nil)
        }
    }
}
