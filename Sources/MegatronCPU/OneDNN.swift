import CDNNL
import CPackedBF16
import CQuantizedRows
import CSmallProducts
import Foundation

/// Matrix products through oneDNN (the library PyTorch itself uses on the CPU): each weight is packed once, at
/// load, into the blocked layout oneDNN's kernels read fastest, and each product runs a primitive cached per shape.
/// oneDNN chooses its kernels at run time (AVX2, AVX-512, AVX512_BF16, AMX …).
///
/// Threading: each core runs its part of a product single-threaded (our workers, as for OpenBLAS): for few rows its
/// block of output columns (reading only its share of the weights), for many rows (`rowSplitRows`) its share of the
/// rows against the whole matrix, written into y in place. FP32 and BF16 weights are packed once, whole, the
/// per-core column blocks views into it; int8 weights are packed one block per core. Letting oneDNN thread each
/// product itself (OpenMP) measured ~10% slower on the whole model: OpenMP's workers spin between products and fight
/// the workers of the other kernels.
///
/// Three precisions (`OneDNNMatrix.Precision`): FP32; BF16 (inputs rounded to BF16, FP32 accumulation); int8
/// (weights symmetric per output channel, inputs quantized per row at run time to u8 with a zero point, int32
/// accumulation, then our epilogue scales back to FP32).
final class OneDNN: @unchecked Sendable {
    /// The shared engine, or nil where oneDNN cannot start (then the backend uses OpenBLAS).
    static let shared: OneDNN? = try? OneDNN()

    /// The instruction set oneDNN dispatches to here (the CPU's best, or less under `DNNL_MAX_CPU_ISA`).
    let isa: dnnl_cpu_isa_t
    /// Whether products multiply BF16 pairs in hardware (AVX512_BF16 or AMX).
    var hasBFloat16: Bool { [dnnl_cpu_isa_avx512_core_bf16, dnnl_cpu_isa_avx512_core_amx].contains(isa) }
    /// Whether BF16 products of many rows run in FP32 on the weights widened (`OneDNNWidenedBF16.swift`): where
    /// this CPU's BF16 dot products are slower than FP32 ones.
    let widensBF16: Bool
    /// Whether int8 products use VNNI (or AMX) dot products: they sum u8 × s8 pairs in 32 bits. Without it they sum
    /// pairs in 16 bits, saturating beyond 32,767, so the two operands give up a bit between them (`weightLevels`).
    var hasVNNI: Bool {
        [dnnl_cpu_isa_avx512_core_vnni, dnnl_cpu_isa_avx512_core_bf16, dnnl_cpu_isa_avx512_core_amx, dnnl_cpu_isa_avx2_vnni].contains(isa)
    }
    /// Whether oneDNN runs FP32 products on weights packed once here (its brgemm kernels, which oneDNN 2.6 has only
    /// for AVX-512). Below that its FP32 products read the weights plain and repack them on every call, as BLAS
    /// does, so the backend keeps FP32 weights plain for OpenBLAS and its own kernel for few rows instead.
    var prepacksFP32: Bool {
        [dnnl_cpu_isa_avx512_core, dnnl_cpu_isa_avx512_core_vnni, dnnl_cpu_isa_avx512_core_bf16, dnnl_cpu_isa_avx512_core_amx].contains(isa)
    }
    /// The widest vectors (floats) our own kernels beside oneDNN's may use under oneDNN's instruction-set cap
    /// (`DNNL_MAX_CPU_ISA`), so that a capped run measures the smaller CPU: 16 where oneDNN runs an AVX-512 level,
    /// 8 at AVX2, 0 below. The attention and int8 row kernels keep to it (the CPU's own width may be less).
    var vectorLanes: Int { prepacksFP32 ? 16 : [dnnl_cpu_isa_avx2, dnnl_cpu_isa_avx2_vnni].contains(isa) ? 8 : 0 }
    /// The largest quantized input value: 255, or 191 without VNNI (`weightLevels`).
    var inputLevels: Int32 { hasVNNI ? 255 : 191 }
    /// The largest quantized weight magnitude: 127, or 85 without VNNI. There the products of a pair are summed in 16
    /// bits, so the pair's largest sum must fit: 2 · 191 · 85 = 32,470 ≤ 32,767 (checked: oneDNN's AVX2 kernel gives
    /// 32,767 · K/2 for 255 × 127 everywhere). The bit that does not fit is split between the operands. PyTorch's
    /// `reduce_range` takes it from the inputs (0…127); measured on the tiny task models under ONEDNN_MAX_CPU_ISA=AVX2
    /// (`QuantizationTests`, fill-mask / per-token NER / classification top answers equal to FP32's): inputs 127 and
    /// weights 127: 94.0% / 98.4% / 99.3%; 255 and 63: 95.3% / 98.9% / 99.0%; 191 and 85: 96.3% / 98.4% / 99.3%
    /// (with VNNI, 255 and 127: 97.7% / 99.3% / 100%).
    var weightLevels: Int32 { hasVNNI ? 127 : 85 }
    /// Whether int8 weights are packed by us, once, into the int8 panel layout (BA16a64b4a, as oneDNN packs them for
    /// VNNI) for our AVX2 kernel (`mb_panel_product_u8s8_avx2`), which then runs every int8 product: without VNNI,
    /// where oneDNN 2.6's int8 kernel (`gemm:jit`) reads plain weights and repacks them on every call (under the
    /// cap, AVX2 or more with `OneDNN.vectorLanes`). Its tiles keep the whole of K in registers, so the epilogue runs
    /// on each tile as it leaves them (no buffer of int32 sums, no second pass). Measured on the 345M model on an AMD
    /// EPYC Zen 4 under `DNNL_MAX_CPU_ISA=AVX2` (`bench_compare.py --baseline` the build with `gemm:jit` and the
    /// row-major few-row kernel, best tokens/s): 1×8 1.03×, 1×128 1.07–1.09×, 8×128 1.01–1.02×, 32×32 1.00–1.05×; the
    /// same int32 sums, so the same outputs bit for bit. The same design with VNNI (tiles of 4 × 64 columns) against
    /// oneDNN's `brg:avx512_core_vnni` was level at many rows and 13% slower at 1×8, so VNNI stays with oneDNN and
    /// the few-row panel kernel. Elsewhere (no VNNI, no AVX2) oneDNN picks the layout.
    var packsInt8Panels: Bool { !hasVNNI && vectorLanes >= 8 && mb_panel_products_int8_avx2_available() }

    /// The library's version, e.g. "2.6.3".
    var version: String {
        guard let v = dnnl_version()?.pointee else { return "?" }
        return "\(v.major).\(v.minor).\(v.patch)"
    }

    /// The instruction set by oneDNN's name for it, e.g. "avx512_core_amx".
    var isaName: String {
        switch isa {
        case dnnl_cpu_isa_sse41: "sse41"
        case dnnl_cpu_isa_avx: "avx"
        case dnnl_cpu_isa_avx2: "avx2"
        case dnnl_cpu_isa_avx2_vnni: "avx2_vnni"
        case dnnl_cpu_isa_avx512_core: "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: "avx512_core_amx"
        default: "isa 0x" + String(isa.rawValue, radix: 16)
        }
    }

    let engine: dnnl_engine_t
    private let lock = NSLock()
    private var primitives: [Key: Primitive] = [:]
    /// Shapes oneDNN refused, or offered only its slow reference kernel for: another library serves them.
    private var refused = Set<Key>()
    private var used = Set<String>()

    /// The kernels of every product primitive made so far, e.g. ["brg:avx512_core_amx_int8"].
    var kernelsUsed: [String] {
        lock.lock()
        defer { lock.unlock() }
        return used.sorted()
    }

    /// One cached primitive and the scratch memory an execution of it needs.
    final class Primitive: @unchecked Sendable {
        let primitive: dnnl_primitive_t
        let scratchpad: dnnl_memory_desc_t
        let scratchpadBytes: Int
        init(primitive: dnnl_primitive_t, scratchpad: dnnl_memory_desc_t, scratchpadBytes: Int) {
            self.primitive = primitive
            self.scratchpad = scratchpad
            self.scratchpadBytes = scratchpadBytes
        }
        deinit { dnnl_primitive_destroy(primitive) }
    }

    /// What a cached primitive computes.
    enum Key: Hashable {
        case matmul(rows: Int, columns: Int, k: Int, precision: OneDNNMatrix.Precision)
        /// A whole matrix's product writing y in place: its bias added, y's old values too when accumulating.
        /// `activation`: oneDNN's eltwise algorithm applied last (a post-op), 0 for none.
        case matmulInPlace(rows: Int, n: Int, k: Int, precision: OneDNNMatrix.Precision, bias: Bool, accumulate: Bool, activation: UInt32)
        /// Training's general product on BF16 operands (`BF16MatrixProducts`): c (m, n) [+]= a · op(b), a plain block of
        /// m rows of a (m, k) and of c.
        case generalBF16(m: Int, n: Int, k: Int, transposeB: Bool, accumulate: Bool)
        case eltwise(algorithm: UInt32, count: Int)
        case layerNorm(rows: Int, width: Int, epsilon: Float)
    }

    private init() throws {
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine else { throw OneDNNError("no CPU engine") }
        self.engine = engine
        isa = dnnl_get_effective_cpu_isa()
        widensBF16 = Self.widensBF16(isa: isa, vendor: Runtime.cpuVendor, setting: Settings.current[.bf16Products])
    }

    /// The memory descriptor of a row-major 2-D array (rows `stride` elements apart).
    static func plain(_ rows: Int, _ columns: Int, _ type: dnnl_data_type_t, stride: Int? = nil) -> dnnl_memory_desc_t {
        var desc = dnnl_memory_desc_t()
        var dims: [dnnl_dim_t] = [dnnl_dim_t(rows), dnnl_dim_t(columns)]
        var strides: [dnnl_dim_t] = [dnnl_dim_t(stride ?? columns), 1]
        _ = dnnl_memory_desc_init_by_strides(&desc, 2, &dims, type, &strides)
        return desc
    }

    /// The (K, N) view of a row-major W (N, K): W's rows are its columns.
    static func transposed(_ k: Int, _ n: Int, _ type: dnnl_data_type_t) -> dnnl_memory_desc_t {
        var desc = dnnl_memory_desc_t()
        var dims: [dnnl_dim_t] = [dnnl_dim_t(k), dnnl_dim_t(n)]
        _ = dnnl_memory_desc_init_by_tag(&desc, 2, &dims, type, dnnl_ba)
        return desc
    }

    /// Keeps oneDNN to one OpenMP thread on the calling thread (the count is per thread): we split the work between
    /// the cores ourselves. Called before every primitive is described as well as before it runs, because oneDNN
    /// plans a primitive for the threads it sees when the primitive is made: on a 16-core Xeon with AMX, BF16
    /// products planned for 3 or more threads and run on one gave wrong sums (the fixtures' hidden states off by up to
    /// 3.1; gpu-report 5 and the runs after it, with `OMP_NUM_THREADS` 1 to 8).
    static func oneThread() { omp_set_num_threads(1) }

    /// Runs `body` with a stream of its own on this thread, oneDNN kept to one thread.
    func withStream<T>(_ body: (dnnl_stream_t) -> T?) -> T? {
        Self.oneThread()
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream else { return nil }
        defer { dnnl_stream_destroy(stream) }
        return body(stream)
    }

    /// Packs W (N, K) row-major (FP32 or BF16 elements at `weights`, as `sourceType` says) for FP32 or BF16
    /// products, one block of output columns per core. nil when oneDNN offers no kernel better than its reference
    /// one for it.
    func pack(_ weights: UnsafeRawPointer, sourceType: dnnl_data_type_t, n: Int, k: Int,
              precision: OneDNNMatrix.Precision) -> OneDNNMatrix? {
        precondition(precision != .int8, "int8 matrices are packed by quantize(_:n:k:)")
        return pack(weights, sourceType: sourceType, n: n, k: k, precision: precision, scales: [], sums: [])
    }

    /// Quantizes W (N, K) row-major FP32 to int8, symmetric per output channel (scale = max |w| / `weightLevels` per
    /// row, as PyTorch's per-channel qint8), and packs it for int8 products.
    func quantize(_ weights: UnsafePointer<Float>, n: Int, k: Int) -> OneDNNMatrix? {
        let quantized = UnsafeMutablePointer<Int8>.allocate(capacity: max(n * k, 1))
        defer { quantized.deallocate() }
        var scales = [Float](repeating: 1, count: n), sums = [Int32](repeating: 0, count: n)
        scales.withUnsafeMutableBufferPointer { scales in
            sums.withUnsafeMutableBufferPointer { sums in
                Parallel.forEach(n, minimumPerThread: 64) { rows in
                    for row in rows {
                        mb_quantize_weight_row(QuantizedRows.widest, weights + row * k, Int32(k), Float(weightLevels), quantized + row * k,
                                               scales.baseAddress! + row, sums.baseAddress! + row)
                    }
                }
            }
        }
        return pack(quantized, sourceType: dnnl_s8, n: n, k: k, precision: .int8, scales: scales, sums: sums)
    }

    private func pack(_ weights: UnsafeRawPointer, sourceType: dnnl_data_type_t, n: Int, k: Int,
                      precision: OneDNNMatrix.Precision, scales: [Float], sums: [Int32]) -> OneDNNMatrix? {
        let parts = max(1, min(Parallel.cores, n / 64))
        // Block widths in multiples of 64 columns, so every block keeps whole kernel tiles.
        let width = ((n + parts - 1) / parts + 63) / 64 * 64
        let columnRanges = stride(from: 0, to: n, by: width).map { $0..<min($0 + width, n) }
        // FP32 and BF16: packed whole, the blocks views into it, when the layout allows (`views(of:columns:)`).
        if precision != .int8, let (whole, memory) = packBlock(weights, sourceType: sourceType, columns: 0..<n, k: k, precision: precision) {
            if let blocks = Self.views(of: whole, columns: columnRanges, type: precision.weightType) {
                return OneDNNMatrix(n: n, k: k, precision: precision, blocks: blocks, whole: whole, memories: [memory])
            }
            dnnl_memory_destroy(memory)
        }
        var blocks: [OneDNNMatrix.Block] = [], memories: [dnnl_memory_t] = []
        defer { if blocks.count < columnRanges.count { memories.forEach { dnnl_memory_destroy($0) } } }
        let elementSize = Self.size(sourceType)
        for columns in columnRanges {
            guard let (block, memory) = packBlock(weights + columns.lowerBound * k * elementSize, sourceType: sourceType,
                                                  columns: columns, k: k, precision: precision) else { return nil }
            blocks.append(block)
            memories.append(memory)
        }
        return OneDNNMatrix(n: n, k: k, precision: precision, blocks: blocks, whole: nil, memories: memories, scales: scales,
                            sums: sums, ownPanels: precision == .int8 && packsInt8Panels)
    }

    /// A blocked layout's inner blocks, innermost last: their sizes and the dimension each splits (e.g. BA16a64b2a:
    /// [16, 64, 2] and [0, 1, 0]).
    static func innerBlocking(_ desc: dnnl_memory_desc_t) -> (blocks: [dnnl_dim_t], indices: [dnnl_dim_t]) {
        let blocking = desc.format_desc.blocking, count = Int(blocking.inner_nblks)
        return (withUnsafeBytes(of: blocking.inner_blks) { Array($0.bindMemory(to: dnnl_dim_t.self).prefix(count)) },
                withUnsafeBytes(of: blocking.inner_idxs) { Array($0.bindMemory(to: dnnl_dim_t.self).prefix(count)) })
    }

    /// The column blocks of a matrix packed whole as views into it, each the layout a (K, columns) matrix packed on
    /// its own would have: possible when the layout keeps blocks of columns outermost (oneDNN's brgemm layouts, e.g.
    /// BA16a64b: per 64 columns, every K in blocks of 16) and every block starts on such a column block. nil otherwise.
    static func views(of whole: OneDNNMatrix.Block, columns: [Range<Int>], type: dnnl_data_type_t) -> [OneDNNMatrix.Block]? {
        var desc = whole.desc
        guard desc.format_kind == dnnl_blocked, desc.ndims == 2, desc.offset0 == 0 else { return nil }
        let blocking = desc.format_desc.blocking
        let (innerBlocks, innerIndices) = innerBlocking(desc)
        var columnBlock = 1
        for i in innerBlocks.indices where innerIndices[i] == 1 { columnBlock *= Int(innerBlocks[i]) }
        let columnStride = Int(blocking.strides.1), elementSize = size(type)
        func paddedColumns(_ count: Int) -> Int { (count + columnBlock - 1) / columnBlock * columnBlock }
        // Column blocks outermost: the whole is its padded column blocks one after another.
        guard dnnl_memory_desc_get_size(&desc) == paddedColumns(Int(desc.dims.1)) / columnBlock * columnStride * elementSize
        else { return nil }
        var views: [OneDNNMatrix.Block] = []
        for range in columns {
            guard range.lowerBound % columnBlock == 0 else { return nil }
            var view = whole.desc
            view.dims.1 = dnnl_dim_t(range.count)
            view.padded_dims.1 = dnnl_dim_t(paddedColumns(range.count))
            guard dnnl_memory_desc_get_size(&view) == paddedColumns(range.count) / columnBlock * columnStride * elementSize else { return nil }
            views.append(OneDNNMatrix.Block(columns: range, desc: view,
                                            data: whole.data + range.lowerBound / columnBlock * columnStride * elementSize))
        }
        return views
    }

    static func size(_ type: dnnl_data_type_t) -> Int {
        switch type {
        case dnnl_f32, dnnl_s32: 4
        case dnnl_bf16, dnnl_f16: 2
        default: 1
        }
    }

    /// W's rows `columns` (at `weights`) packed as one block: the block, and the memory that holds it.
    private func packBlock(_ weights: UnsafeRawPointer, sourceType: dnnl_data_type_t, columns: Range<Int>, k: Int,
                           precision: OneDNNMatrix.Precision) -> (OneDNNMatrix.Block, dnnl_memory_t)? {
        let n = columns.count
        // The layout oneDNN wants for these weights; it depends on K, N and the kernels, not on M.
        var src = Self.plain(128, k, precision.inputType), dst = Self.plain(128, n, precision.outputType)
        var any = dnnl_memory_desc_t()
        var dims: [dnnl_dim_t] = [dnnl_dim_t(k), dnnl_dim_t(n)]
        var source = Self.transposed(k, n, sourceType)
        if precision == .int8 && packsInt8Panels {
            // Our panels (`packsInt8Panels`): oneDNN only reorders into them; no oneDNN product reads them.
            var panels = dnnl_memory_desc_t()
            guard dnnl_memory_desc_init_by_tag(&panels, 2, &dims, dnnl_s8, dnnl_BA16a64b4a) == dnnl_success,
                  let to = reorder(from: &source, UnsafeMutableRawPointer(mutating: weights), to: &panels, nil) else { return nil }
            return (OneDNNMatrix.Block(columns: columns, desc: panels, data: Self.handle(to)), to)
        }
        guard dnnl_memory_desc_init_by_tag(&any, 2, &dims, precision.weightType, dnnl_format_tag_any) == dnnl_success else { return nil }
        var desc = dnnl_matmul_desc_t()
        guard dnnl_matmul_desc_init(&desc, &src, &any, nil, &dst) == dnnl_success else { return nil }
        var pd: dnnl_primitive_desc_t?
        Self.oneThread()  // the layout a one-thread product wants
        guard dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil) == dnnl_success, let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        guard Self.isFast(pd), var packed = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)?.pointee else { return nil }
        guard let to = reorder(from: &source, UnsafeMutableRawPointer(mutating: weights), to: &packed, nil) else { return nil }
        return (OneDNNMatrix.Block(columns: columns, desc: packed, data: Self.handle(to)), to)
    }

    /// Reorders the array at `from` (described by `fromDesc`) into the layout `toDesc`: into `to`, or into a buffer
    /// oneDNN allocates when `to` is nil. The destination memory (the caller destroys it), or nil on failure.
    private func reorder(from fromDesc: inout dnnl_memory_desc_t, _ from: UnsafeMutableRawPointer, to toDesc: inout dnnl_memory_desc_t,
                         _ to: UnsafeMutableRawPointer?) -> dnnl_memory_t? {
        var source: dnnl_memory_t?, target: dnnl_memory_t?, reorderPD: dnnl_primitive_desc_t?, reorder: dnnl_primitive_t?
        defer {
            if let reorder { dnnl_primitive_destroy(reorder) }
            if let reorderPD { dnnl_primitive_desc_destroy(reorderPD) }
            if let source { dnnl_memory_destroy(source) }
        }
        // DNNL_MEMORY_ALLOCATE, ((void *)(size_t)-1): oneDNN allocates the buffer itself.
        guard dnnl_memory_create(&source, &fromDesc, engine, from) == dnnl_success,
              dnnl_memory_create(&target, &toDesc, engine, to ?? UnsafeMutableRawPointer(bitPattern: UInt.max)) == dnnl_success,
              let target else { return nil }
        Self.oneThread()
        guard dnnl_reorder_primitive_desc_create(&reorderPD, &fromDesc, engine, &toDesc, engine, nil) == dnnl_success, let reorderPD,
              dnnl_primitive_create(&reorder, reorderPD) == dnnl_success, let reorder else {
            dnnl_memory_destroy(target)
            return nil
        }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: source), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: target)]
        let status = withStream { stream -> dnnl_status_t in
            let status = dnnl_primitive_execute(reorder, stream, 2, &args)
            dnnl_stream_wait(stream)
            return status
        }
        guard status == dnnl_success else {
            dnnl_memory_destroy(target)
            return nil
        }
        return target
    }

    /// Writes a packed matrix back out as plain FP32 W (N, K) row-major (N·K floats at `out`; int8 weights times
    /// their scales): the way back when oneDNN refuses a product shape that the packing did not foresee. False when
    /// oneDNN cannot reorder it.
    func unpack(_ matrix: OneDNNMatrix, into out: UnsafeMutablePointer<Float>) -> Bool {
        let k = matrix.k
        return matrix.blocks.allSatisfy { block in
            let n = block.columns.count, first = out + block.columns.lowerBound * k
            var from = block.desc
            if matrix.precision != .int8 {
                var to = Self.transposed(k, n, dnnl_f32)
                guard let target = reorder(from: &from, block.data, to: &to, UnsafeMutableRawPointer(first)) else { return false }
                dnnl_memory_destroy(target)
                return true
            }
            var to = Self.transposed(k, n, dnnl_s8)
            let plain = UnsafeMutablePointer<Int8>.allocate(capacity: max(n * k, 1))
            defer { plain.deallocate() }
            guard let target = reorder(from: &from, block.data, to: &to, UnsafeMutableRawPointer(plain)) else { return false }
            dnnl_memory_destroy(target)
            for row in 0..<n {
                let scale = matrix.scales[block.columns.lowerBound + row]
                for i in 0..<k { first[row * k + i] = Float(plain[row * k + i]) * scale }
            }
            return true
        }
    }

    /// The buffer behind a memory object.
    static func handle(_ memory: dnnl_memory_t) -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        dnnl_memory_get_data_handle(memory, &pointer)
        return pointer!
    }

    /// Output bytes a block's product writes per call (products split by columns). oneDNN writes each block's product
    /// into a dense buffer that the epilogue then moves into y, so without a bound that buffer is the whole (rows,
    /// width) output: at 1×512 the MLM decoder's was 2 × 30 MB, and the pool kept them (that product is now split by
    /// rows in FP32 and BF16, written in place; int8 still goes by columns). BF16 and int8 products go in chunks of
    /// rows whose output stays in the core's L2 cache until the epilogue reads it (BF16 1×512: peak RSS 884 → 838
    /// MiB; speed within this machine's noise). FP32 products re-read their weights per chunk and gained nothing, so
    /// only outputs over 8 MB are split.
    static func chunkBytes(_ precision: OneDNNMatrix.Precision) -> Int { precision.isFP32 ? 8 << 20 : 1 << 20 }
    /// The fewest rows a chunk has: fewer would re-read the weights more often (memory-bound at small batches).
    static let chunkRows = 128

    /// Rows per chunk for a product of `rows` rows whose block is `width` columns wide: the rows in equal chunks of
    /// about `chunkBytes` of output (whole 16-row tiles), at least `chunkRows` rows.
    static func chunk(rows: Int, width: Int, precision: OneDNNMatrix.Precision) -> Int {
        let most = max(chunkRows, chunkBytes(precision) / max(width * 4, 1))
        let chunks = (rows + most - 1) / most
        // Equal chunks, rounded up to whole 16-row tiles (the last chunk takes what is left).
        return min(rows, ((rows + chunks - 1) / max(chunks, 1) + 15) / 16 * 16)
    }

    /// y (rows, N) = x (rows, K) · Wᵀ [+ bias] [+ y when accumulating], each core computing its block of columns in
    /// chunks of rows (`chunk(rows:width:precision:)`), or its share of the rows (`rowSplitRows`); false when oneDNN
    /// has no fast kernel for the shape (the caller then multiplies another way). For BF16 matrices x is rounded to
    /// BF16 first, except where BF16 products of `widenRows` rows or more run in FP32 on the weights widened
    /// (`widenBF16`, default this CPU's `widensBF16`; `multiplyWidened`); for int8 ones x is quantized per row
    /// (`QuantizedRows`). With `activation`, y = act(…) (not with `accumulate`): applied inside the products split by
    /// rows (a oneDNN post-op), after the others.
    func multiply(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, bias: UnsafePointer<Float>?, accumulate: Bool,
                  into y: UnsafeMutablePointer<Float>, activation: Activation? = nil, widenBF16: Bool? = nil) -> Bool {
        precondition(activation == nil || !accumulate, "an activation applies to a product's own output, not to y += x Wᵀ")
        guard rows > 0 else { return true }
        if matrix.precision == .bf16, widenBF16 ?? widensBF16, rows >= Self.widenRows,
           multiplyWidened(x, rows: rows, matrix: matrix, bias: bias, accumulate: accumulate, into: y, activation: activation) {
            return true
        }
        if multiplyPanels(x, rows: rows, matrix: matrix, bias: bias, accumulate: accumulate, into: y, widenBF16: widenBF16 ?? widensBF16) {
            if let activation { activateAfter(y, count: rows * matrix.n, activation) }
            return true
        }
        if let whole = matrix.whole, rows >= Self.rowSplitRows {
            return multiplySplittingRows(x, rows: rows, matrix: matrix, whole: whole, bias: bias, accumulate: accumulate, into: y,
                                         activation: activation)
        }
        // int8's epilogue applies GELU as it writes y (no second pass over y); other activations follow the product.
        let gelu = activation == .gelu && matrix.precision == .int8
        guard multiplyByColumns(x, rows: rows, matrix: matrix, bias: bias, accumulate: accumulate, into: y, gelu: gelu) else { return false }
        if let activation, !gelu { activateAfter(y, count: rows * matrix.n, activation) }
        return true
    }

    /// y = act(y) after a product: through oneDNN, or our kernels where oneDNN refuses.
    func activateAfter(_ y: UnsafeMutablePointer<Float>, count: Int, _ activation: Activation) {
        if !activate(y, count: count, activation) { Kernels.activate(y, count: count, activation) }
    }

    /// `multiply` by column blocks: each core its block, in chunks of rows. `panels`: whether few-row int8 products
    /// may take the VNNI panel kernel (tests compare it with oneDNN's); `gelu`: int8 only, y = GELU(…) in the epilogue.
    func multiplyByColumns(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, bias: UnsafePointer<Float>?,
                           accumulate: Bool, into y: UnsafeMutablePointer<Float>, panels: Bool = true, gelu: Bool = false) -> Bool {
        precondition(!gelu || matrix.precision == .int8 && !accumulate, "GELU in the epilogue: int8 products of their own output only")
        // Int8 on the panels we packed for AVX2 (`packsInt8Panels`): every row count through our kernel, its epilogue
        // fused (`OneDNNPanels.swift`).
        if matrix.ownPanels, let stride = matrix.panelStride {
            multiplyInt8PanelsAVX2(x, rows: rows, matrix: matrix, stride: stride, bias: bias, accumulate: accumulate, into: y, gelu: gelu)
            return true
        }
        // Few rows on oneDNN's int8 panels with VNNI: the panel kernel (`OneDNNPanels.swift`; one chunk, no primitives).
        let panel = panels && matrix.precision == .int8 && Self.panelProductsInt8 && rows <= Self.panelRows && matrix.k % 4 == 0
            ? matrix.panelStride : nil
        if panel != nil { noteUsed("panel:avx512_vnni") }
        // Per block: rows per chunk, and the primitives for a chunk and for the last, shorter chunk (when there is one).
        let plans = panel != nil ? matrix.blocks.map { _ in (chunk: rows, full: nil, last: nil) }
            : matrix.blocks.map { block -> (chunk: Int, full: Primitive?, last: Primitive?) in
            let chunk = Self.chunk(rows: rows, width: block.columns.count, precision: matrix.precision), last = rows - (rows - 1) / chunk * chunk
            let full = self.primitive(.matmul(rows: chunk, columns: block.columns.count, k: matrix.k, precision: matrix.precision), weights: block.desc)
            return (chunk, full, last == chunk ? full
                : self.primitive(.matmul(rows: last, columns: block.columns.count, k: matrix.k, precision: matrix.precision), weights: block.desc))
        }
        guard panel != nil || plans.allSatisfy({ $0.full != nil && $0.last != nil }) else { return false }
        let count = rows * matrix.k
        // Buffers from the pool: the same sizes come back every layer and every pass (no fresh pages to fault in).
        let inputSize = Self.size(matrix.precision.inputType)
        let convertedBytes = max(count * inputSize, 64)
        let converted = BufferPool.shared.take(convertedBytes)
        defer { BufferPool.shared.give(converted, convertedBytes) }
        var input = UnsafeMutableRawPointer(mutating: x)
        var quantized: QuantizedRows?
        switch matrix.precision {
        case .fp32, .widenedBF16: break
        case .bf16:
            Self.roundToBFloat16(x, into: converted.assumingMemoryBound(to: UInt16.self), count: count)
            input = converted
        case .int8:
            quantized = QuantizedRows(x, rows: rows, k: matrix.k, levels: inputLevels, into: converted.assumingMemoryBound(to: UInt8.self))
            input = converted
        }
        let failures = ManagedAtomicFlag()
        Parallel.forEach(matrix.blocks.count, minimumPerThread: 1) { range in
            for index in range {
                let block = matrix.blocks[index]
                // oneDNN 2.6's fast kernels write only dense outputs: each chunk lands in its own (chunk, width) buffer
                // (FP32, or int32 sums), and the epilogue moves it into y's columns, adding the bias and y's old values.
                let width = block.columns.count, chunk = plans[index].chunk
                let partBytes = max(chunk * width * 4, 64)
                let part = BufferPool.shared.take(partBytes)
                defer { BufferPool.shared.give(part, partBytes) }
                let columns = block.columns, blockBias = bias.map { $0 + columns.lowerBound }
                var first = 0
                while first < rows {
                    let chunkRows = first..<min(rows, first + chunk)
                    let chunkInput = input + first * matrix.k * inputSize
                    var ok = true
                    if let panel {
                        mb_panel_product_u8s8(chunkInput.assumingMemoryBound(to: UInt8.self), Int32(chunkRows.count), Int32(matrix.k),
                                              block.data.assumingMemoryBound(to: Int8.self), panel, Int32(width),
                                              part.assumingMemoryBound(to: Int32.self), width)
                    } else if let primitive = chunkRows.count == chunk ? plans[index].full : plans[index].last {
                        ok = self.execute(primitive,
                                          [(DNNL_ARG_SRC, Self.plain(chunkRows.count, matrix.k, matrix.precision.inputType), chunkInput),
                                           (DNNL_ARG_WEIGHTS, block.desc, block.data),
                                           (DNNL_ARG_DST, Self.plain(chunkRows.count, width, matrix.precision.outputType), part)])
                    }
                    guard ok else {
                        failures.set()
                        break
                    }
                    let target = y + first * matrix.n + columns.lowerBound
                    if let quantized {
                        matrix.scales.withUnsafeBufferPointer { scales in
                            matrix.sums.withUnsafeBufferPointer { sums in
                                quantized.epilogue(part.assumingMemoryBound(to: Int32.self), rows: chunkRows, width: width,
                                                   scales: scales.baseAddress! + columns.lowerBound, sums: sums.baseAddress! + columns.lowerBound,
                                                   bias: blockBias, accumulate: accumulate, gelu: gelu, into: target, stride: matrix.n)
                            }
                        }
                    } else {
                        Self.epilogue(part.assumingMemoryBound(to: Float.self), rows: chunkRows.count, width: width, bias: blockBias,
                                      accumulate: accumulate, into: target, stride: matrix.n)
                    }
                    first = chunkRows.upperBound
                }
            }
        }
        return !failures.isSet
    }

    /// Products of at least this many rows on a matrix packed whole split the rows between the cores, each writing its
    /// rows of y in place through oneDNN (bias and accumulation fused), each core's rows rounded to BF16 by that core.
    /// Fewer rows split the columns: each core reads only its half of the weights (memory-bound at small batches).
    /// Measured on the 345M model, one process alternating the two (medians of paired passes): BF16 8×128 1.09× and
    /// 32×32 1.12× faster split by rows, FP32 8×128 1.03×; at 128 rows BF16 1.03×, FP32 0.98×.
    static let rowSplitRows = 256

    /// `multiply` with the rows split between the cores (`rowSplitRows`).
    private func multiplySplittingRows(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, whole: OneDNNMatrix.Block,
                                       bias: UnsafePointer<Float>?, accumulate: Bool, into y: UnsafeMutablePointer<Float>,
                                       activation: Activation?) -> Bool {
        let parts = min(Parallel.cores, (rows + 15) / 16), k = matrix.k, n = matrix.n
        // Equal parts in whole 16-row tiles, the last taking what is left.
        let step = ((rows + parts - 1) / parts + 15) / 16 * 16
        let ranges = stride(from: 0, to: rows, by: step).map { $0..<min($0 + step, rows) }
        var primitives: [Int: Primitive] = [:]  // by rows: the parts have at most two sizes
        for count in Set(ranges.map(\.count)) {
            guard let made = primitive(.matmulInPlace(rows: count, n: n, k: k, precision: matrix.precision, bias: bias != nil,
                                                      accumulate: accumulate, activation: activation.map { Self.algorithm($0).rawValue } ?? 0),
                                       weights: whole.desc) else { return false }
            primitives[count] = made
        }
        let inputSize = Self.size(matrix.precision.inputType)
        let convertedBytes = matrix.precision.isFP32 ? 64 : max(rows * k * inputSize, 64)
        let converted = BufferPool.shared.take(convertedBytes)
        defer { BufferPool.shared.give(converted, convertedBytes) }
        let failures = ManagedAtomicFlag()
        Parallel.forEach(ranges.count, minimumPerThread: 1) { indices in
            for index in indices {
                let range = ranges[index]
                guard let primitive = primitives[range.count] else {
                    failures.set()
                    continue
                }
                var input = UnsafeMutableRawPointer(mutating: x + range.lowerBound * k)
                if matrix.precision == .bf16 {
                    input = converted + range.lowerBound * k * inputSize
                    Self.roundToBFloat16(x + range.lowerBound * k, into: input.assumingMemoryBound(to: UInt16.self),
                                         count: range.count * k, parallel: false)
                }
                var arguments = [(DNNL_ARG_SRC, Self.plain(range.count, k, matrix.precision.inputType), input),
                                 (DNNL_ARG_WEIGHTS, whole.desc, whole.data),
                                 (DNNL_ARG_DST, Self.plain(range.count, n, dnnl_f32), UnsafeMutableRawPointer(y + range.lowerBound * n))]
                if let bias { arguments.append((DNNL_ARG_BIAS, Self.plain(1, n, dnnl_f32), UnsafeMutableRawPointer(mutating: bias))) }
                if !self.execute(primitive, arguments) { failures.set() }
            }
        }
        return !failures.isSet
    }

    /// y[r, j] = part[r, j] + bias[j] (+ y[r, j] when accumulating), for a (rows, width) block of y whose rows are
    /// `stride` floats apart.
    static func epilogue(_ part: UnsafePointer<Float>, rows: Int, width: Int, bias: UnsafePointer<Float>?, accumulate: Bool,
                         into y: UnsafeMutablePointer<Float>, stride: Int) {
        for r in 0..<rows {
            let source = part + r * width, target = y + r * stride
            switch (bias, accumulate) {
            case (let bias?, true): for j in 0..<width { target[j] += source[j] + bias[j] }
            case (let bias?, false): for j in 0..<width { target[j] = source[j] + bias[j] }
            case (nil, true): for j in 0..<width { target[j] += source[j] }
            case (nil, false): target.update(from: source, count: width)
            }
        }
    }

    /// Runs `primitive` on this thread, one thread, on the arrays given (each with its memory descriptor), with a
    /// scratchpad from the pool. False when oneDNN fails.
    func execute(_ primitive: Primitive, _ arguments: [(arg: Int32, desc: dnnl_memory_desc_t, data: UnsafeMutableRawPointer)]) -> Bool {
        let scratchBytes = max(primitive.scratchpadBytes, 64)
        let scratchBuffer = BufferPool.shared.take(scratchBytes)
        var memories: [dnnl_memory_t] = []
        defer {
            BufferPool.shared.give(scratchBuffer, scratchBytes)
            for memory in memories { dnnl_memory_destroy(memory) }
        }
        var args: [dnnl_exec_arg_t] = []
        for (arg, desc, data) in arguments + [(DNNL_ARG_SCRATCHPAD, primitive.scratchpad, scratchBuffer)] {
            var desc = desc
            var memory: dnnl_memory_t?
            guard dnnl_memory_create(&memory, &desc, engine, data) == dnnl_success, let memory else { return false }
            memories.append(memory)
            args.append(dnnl_exec_arg_t(arg: arg, memory: memory))
        }
        return withStream { stream -> Bool in
            let status = dnnl_primitive_execute(primitive.primitive, stream, Int32(args.count), &args)
            dnnl_stream_wait(stream)
            return status == dnnl_success
        } ?? false
    }

    /// The cached primitive for a product: by a block (`Key.matmul`, a dense output of the precision's type), or by a
    /// whole matrix in place (`Key.matmulInPlace`, FP32 output, bias as oneDNN's bias argument, accumulation as a sum
    /// post-op); `weights` is the packed layout. Executions bring their own scratchpad, so one primitive may run on
    /// several threads at once.
    private func primitive(_ key: Key, weights: dnnl_memory_desc_t) -> Primitive? {
        let rows: Int, columns: Int, k: Int, precision: OneDNNMatrix.Precision, outputType: dnnl_data_type_t
        var hasBias = false, accumulate = false, activation: UInt32 = 0
        switch key {
        case .matmul(let r, let c, let depth, let p):
            (rows, columns, k, precision, outputType) = (r, c, depth, p, p.outputType)
        case .matmulInPlace(let r, let n, let depth, let p, let b, let a, let act):
            (rows, columns, k, precision, outputType, hasBias, accumulate, activation) = (r, n, depth, p, dnnl_f32, b, a, act)
        default: return nil
        }
        return primitive(key) { attr in
            var source = Self.plain(rows, k, precision.inputType), output = Self.plain(rows, columns, outputType)
            var weights = weights, bias = Self.plain(1, columns, dnnl_f32)
            if accumulate || activation != 0 {
                var postOps: dnnl_post_ops_t?
                guard dnnl_post_ops_create(&postOps) == dnnl_success, let postOps else { return nil }
                defer { dnnl_post_ops_destroy(postOps) }
                guard !accumulate || dnnl_post_ops_append_sum(postOps, 1) == dnnl_success,
                      activation == 0 || dnnl_post_ops_append_eltwise(postOps, 1, dnnl_alg_kind_t(activation), 0, 0) == dnnl_success,
                      dnnl_primitive_attr_set_post_ops(attr, postOps) == dnnl_success else { return nil }
            }
            var desc = dnnl_matmul_desc_t()
            var pd: dnnl_primitive_desc_t?
            let described = hasBias ? dnnl_matmul_desc_init(&desc, &source, &weights, &bias, &output)
                : dnnl_matmul_desc_init(&desc, &source, &weights, nil, &output)
            guard described == dnnl_success, dnnl_primitive_desc_create(&pd, &desc, attr, engine, nil) == dnnl_success else { return nil }
            return pd
        }
    }

    /// The cached primitive for `key`, made on first use from the descriptor `describe` returns for the given
    /// attributes (user scratchpad); nil when oneDNN refuses it or offers only its reference kernel.
    func primitive(_ key: Key, describe: (dnnl_primitive_attr_t) -> dnnl_primitive_desc_t?) -> Primitive? {
        lock.lock()
        defer { lock.unlock() }
        if let cached = primitives[key] { return cached }
        if refused.contains(key) { return nil }
        if primitives.count >= 512 { primitives.removeAll() }  // many distinct batch shapes: start the cache over
        var attr: dnnl_primitive_attr_t?
        defer { if let attr { dnnl_primitive_attr_destroy(attr) } }
        var primitive: dnnl_primitive_t?
        Self.oneThread()  // planned for the one thread it runs on
        guard dnnl_primitive_attr_create(&attr) == dnnl_success, let attr,
              dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success,
              let pd = describe(attr) else {
            refused.insert(key)
            return nil
        }
        defer { dnnl_primitive_desc_destroy(pd) }
        guard Self.isFast(pd), var scratchpad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)?.pointee,
              dnnl_primitive_create(&primitive, pd) == dnnl_success, let primitive else {
            refused.insert(key)
            return nil
        }
        let made = Primitive(primitive: primitive, scratchpad: scratchpad, scratchpadBytes: dnnl_memory_desc_get_size(&scratchpad))
        primitives[key] = made
        switch key {
        case .matmul(_, _, _, let precision), .matmulInPlace(_, _, _, let precision, _, _, _):
            if let name = Self.implementation(pd) { used.insert((precision == .widenedBF16 ? "fp32-on-bf16:" : "") + name) }
        default: break
        }
        return made
    }

    /// Records a kernel of our own that ran a product (for `kernelsUsed`).
    func noteUsed(_ name: String) {
        lock.lock()
        defer { lock.unlock() }
        used.insert(name)
    }

    /// Whether a primitive descriptor has a real kernel, not oneDNN's reference implementation.
    static func isFast(_ pd: dnnl_primitive_desc_t) -> Bool {
        guard let name = implementation(pd) else { return false }
        return !name.hasPrefix("ref")
    }

    static func implementation(_ pd: dnnl_primitive_desc_t) -> String? {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name else { return nil }
        return String(cString: name)
    }

    /// The kernel oneDNN uses for products of `rows` rows by this matrix, e.g. "brg:avx512_core_amx_bf16".
    func kernelName(rows: Int, matrix: OneDNNMatrix) -> String? {
        guard let block = matrix.blocks.first else { return nil }
        var source = Self.plain(rows, matrix.k, matrix.precision.inputType)
        var output = Self.plain(rows, block.columns.count, matrix.precision.outputType)
        var weights = block.desc
        var desc = dnnl_matmul_desc_t()
        var pd: dnnl_primitive_desc_t?
        Self.oneThread()
        guard dnnl_matmul_desc_init(&desc, &source, &weights, nil, &output) == dnnl_success,
              dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil) == dnnl_success, let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        return Self.implementation(pd)
    }

    /// FP32 → BF16 bits, rounding to nearest even (as PyTorch's autocast does; `mb_round_bf16`); on every core, or
    /// on this thread only when not `parallel`.
    static func roundToBFloat16(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, count: Int, parallel: Bool = true) {
        let chunk = 1 << 14
        guard parallel else { return roundToBFloat16(x, into: out, range: 0..<count) }
        Parallel.forEach((count + chunk - 1) / chunk, minimumPerThread: 4) { chunks in
            roundToBFloat16(x, into: out, range: chunks.lowerBound * chunk..<min(count, chunks.upperBound * chunk))
        }
    }

    private static func roundToBFloat16(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, range: Range<Int>) {
        mb_round_bf16(x + range.lowerBound, range.count, out + range.lowerBound)
    }
}

/// A weight packed by oneDNN, one block of output columns per core, and the precision its products multiply in.
final class OneDNNMatrix: @unchecked Sendable {
    /// What the products multiply in.
    enum Precision: Hashable, Sendable {
        case fp32, bf16, int8
        /// FP32 products on BF16 weights widened to FP32 for the product (`OneDNNWidenedBF16.swift`): FP32 in every
        /// way, with primitives of their own (the widened layout is always BA16a64b).
        case widenedBF16

        /// FP32 and widened BF16: FP32 inputs, weights and outputs.
        var isFP32: Bool { self == .fp32 || self == .widenedBF16 }
        var inputType: dnnl_data_type_t { isFP32 ? dnnl_f32 : self == .bf16 ? dnnl_bf16 : dnnl_u8 }
        var weightType: dnnl_data_type_t { isFP32 ? dnnl_f32 : self == .bf16 ? dnnl_bf16 : dnnl_s8 }
        var outputType: dnnl_data_type_t { self == .int8 ? dnnl_s32 : dnnl_f32 }
    }

    /// Output columns `columns` of W, packed: their layout and where they are.
    struct Block {
        let columns: Range<Int>
        let desc: dnnl_memory_desc_t
        let data: UnsafeMutableRawPointer
    }

    let n: Int, k: Int
    let precision: Precision
    /// One block of output columns per core.
    let blocks: [Block]
    /// All the columns as one block, when the blocks are views into it (FP32 and BF16 where the layout allows):
    /// products of many rows split the rows between the cores instead and write y in place.
    let whole: Block?
    /// The memory behind the blocks (destroyed with the matrix).
    private let memories: [dnnl_memory_t]
    /// int8 only: each output channel's scale, and the sum of its quantized weights (for the inputs' zero points).
    let scales: [Float]
    let sums: [Int32]
    /// Whether the blocks are our int8 panels for AVX2 (`OneDNN.packsInt8Panels`): no oneDNN product reads them.
    let ownPanels: Bool
    /// Packed in 64-column panels (FP32 whole, int8 per block): the elements from one panel to the next
    /// (`OneDNN.panelStride`).
    let panelStride: Int?

    init(n: Int, k: Int, precision: Precision, blocks: [Block], whole: Block?, memories: [dnnl_memory_t], scales: [Float] = [],
         sums: [Int32] = [], ownPanels: Bool = false) {
        self.n = n
        self.k = k
        self.precision = precision
        self.blocks = blocks
        self.whole = whole
        self.memories = memories
        self.scales = scales
        self.sums = sums
        self.ownPanels = ownPanels
        panelStride = OneDNN.panelStride(of: blocks, whole: whole, k: k, precision: precision)
    }

    /// Bytes of the packed weights (and int8 scales and sums).
    var byteCount: Int {
        (whole.map { [$0] } ?? blocks).reduce(scales.count * 4 + sums.count * 4) { total, block in
            var d = block.desc
            return total + dnnl_memory_desc_get_size(&d)
        }
    }

    deinit { for memory in memories { dnnl_memory_destroy(memory) } }
}

/// A flag several workers may set.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

struct OneDNNError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = "oneDNN: " + description }
}
