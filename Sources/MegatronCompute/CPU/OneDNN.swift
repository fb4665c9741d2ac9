import CDNNL
import Foundation

/// Matrix products through oneDNN (the library PyTorch itself uses on the CPU): each weight is packed once, at
/// load, into the blocked layout oneDNN's kernels read fastest, and each product runs a primitive cached per shape.
/// oneDNN chooses its kernels at run time (AVX2, AVX-512, AVX512_BF16, AMX …).
///
/// Threading: a weight is packed as one block of output columns per core, and each core runs its block's product
/// single-threaded (our workers, as for OpenBLAS). Letting oneDNN thread each product itself (OpenMP) measured ~10%
/// slower on the whole model: OpenMP's workers spin between products and fight the workers of the other kernels.
///
/// Measured on a 2-core Intel Xeon (5th generation), (M, K) × (K, N) products of the 345M model's shapes: FP32
/// 1.1–1.45× OpenBLAS 0.3.21's best kernels (SkylakeX), 3.9× at M = 8; BF16 on AMX 2.2–2.8× FP32.
final class OneDNN: @unchecked Sendable {
    /// The shared engine, or nil where oneDNN cannot start (then the backend uses OpenBLAS).
    static let shared: OneDNN? = try? OneDNN()

    let engine: dnnl_engine_t
    private let lock = NSLock()
    private var primitives: [Key: Primitive] = [:]
    /// Shapes oneDNN refused, or offered only its slow reference kernel for: another library serves them.
    private var refused = Set<Key>()

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

    struct Key: Hashable {
        var rows: Int, columns: Int, k: Int
        var type: UInt32
    }

    private init() throws {
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine else { throw OneDNNError("no CPU engine") }
        self.engine = engine
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

    /// Runs `body` with a stream of its own on this thread, oneDNN kept to one thread.
    private func withStream<T>(_ body: (dnnl_stream_t) -> T?) -> T? {
        omp_set_num_threads(1)
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream else { return nil }
        defer { dnnl_stream_destroy(stream) }
        return body(stream)
    }

    /// Packs W (N, K) row-major (FP32 or BF16 elements at `weights`) for products that multiply in `type`
    /// (`dnnl_f32` or `dnnl_bf16`), one block of output columns per core. nil when oneDNN offers no kernel better
    /// than its reference one for it.
    func pack(_ weights: UnsafeRawPointer, sourceType: dnnl_data_type_t, n: Int, k: Int, type: dnnl_data_type_t) -> OneDNNMatrix? {
        let parts = max(1, min(Parallel.cores, n / 64))
        // Block widths in multiples of 64 columns, so every block keeps whole kernel tiles.
        let width = ((n + parts - 1) / parts + 63) / 64 * 64
        var blocks: [OneDNNMatrix.Block] = []
        var start = 0
        while start < n {
            let columns = start..<min(start + width, n)
            let elementSize = sourceType == dnnl_f32 ? 4 : 2
            guard let block = packBlock(weights + columns.lowerBound * k * elementSize, sourceType: sourceType,
                                        columns: columns, k: k, type: type) else { return nil }
            blocks.append(block)
            start = columns.upperBound
        }
        return OneDNNMatrix(n: n, k: k, type: type, blocks: blocks)
    }

    private func packBlock(_ weights: UnsafeRawPointer, sourceType: dnnl_data_type_t, columns: Range<Int>, k: Int,
                           type: dnnl_data_type_t) -> OneDNNMatrix.Block? {
        let n = columns.count
        // The layout oneDNN wants for these weights; it depends on K, N and the kernels, not on M.
        var src = Self.plain(128, k, type), dst = Self.plain(128, n, dnnl_f32)
        var any = dnnl_memory_desc_t()
        var dims: [dnnl_dim_t] = [dnnl_dim_t(k), dnnl_dim_t(n)]
        guard dnnl_memory_desc_init_by_tag(&any, 2, &dims, type, dnnl_format_tag_any) == dnnl_success else { return nil }
        var desc = dnnl_matmul_desc_t()
        guard dnnl_matmul_desc_init(&desc, &src, &any, nil, &dst) == dnnl_success else { return nil }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil) == dnnl_success, let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        guard Self.isFast(pd), var packed = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)?.pointee else { return nil }
        var source = Self.transposed(k, n, sourceType)
        var from: dnnl_memory_t?, to: dnnl_memory_t?
        guard dnnl_memory_create(&from, &source, engine, UnsafeMutableRawPointer(mutating: weights)) == dnnl_success, let from else { return nil }
        defer { dnnl_memory_destroy(from) }
        // DNNL_MEMORY_ALLOCATE, ((void *)(size_t)-1): oneDNN allocates the packed buffer itself.
        guard dnnl_memory_create(&to, &packed, engine, UnsafeMutableRawPointer(bitPattern: UInt.max)) == dnnl_success, let to else { return nil }
        var reorderPD: dnnl_primitive_desc_t?, reorder: dnnl_primitive_t?
        guard dnnl_reorder_primitive_desc_create(&reorderPD, &source, engine, &packed, engine, nil) == dnnl_success, let reorderPD,
              dnnl_primitive_create(&reorder, reorderPD) == dnnl_success, let reorder else {
            dnnl_memory_destroy(to)
            return nil
        }
        defer { dnnl_primitive_destroy(reorder); dnnl_primitive_desc_destroy(reorderPD) }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: from), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: to)]
        let status = withStream { stream -> dnnl_status_t in
            let status = dnnl_primitive_execute(reorder, stream, 2, &args)
            dnnl_stream_wait(stream)
            return status
        }
        guard status == dnnl_success else {
            dnnl_memory_destroy(to)
            return nil
        }
        return OneDNNMatrix.Block(columns: columns, desc: packed, memory: to)
    }

    /// Writes a packed matrix back out as plain FP32 W (N, K) row-major (N·K floats at `out`): the way back when
    /// oneDNN refuses a product shape that the packing did not foresee. False when oneDNN cannot reorder it.
    func unpack(_ matrix: OneDNNMatrix, into out: UnsafeMutablePointer<Float>) -> Bool {
        matrix.blocks.allSatisfy { block in
            var from = block.desc, to = Self.transposed(matrix.k, block.columns.count, dnnl_f32)
            var target: dnnl_memory_t?, reorderPD: dnnl_primitive_desc_t?, reorder: dnnl_primitive_t?
            defer {
                if let reorder { dnnl_primitive_destroy(reorder) }
                if let reorderPD { dnnl_primitive_desc_destroy(reorderPD) }
                if let target { dnnl_memory_destroy(target) }
            }
            guard dnnl_memory_create(&target, &to, engine, UnsafeMutableRawPointer(out + block.columns.lowerBound * matrix.k)) == dnnl_success,
                  dnnl_reorder_primitive_desc_create(&reorderPD, &from, engine, &to, engine, nil) == dnnl_success,
                  dnnl_primitive_create(&reorder, reorderPD) == dnnl_success else { return false }
            var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: block.memory), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: target)]
            return withStream { stream -> Bool in
                let status = dnnl_primitive_execute(reorder, stream, 2, &args)
                dnnl_stream_wait(stream)
                return status == dnnl_success
            } ?? false
        }
    }

    /// y (rows, N) = x (rows, K) · Wᵀ [+ bias] [+ y when accumulating], each core computing its block of columns;
    /// false when oneDNN has no fast kernel for the shape (the caller then multiplies another way). For BF16
    /// matrices x is rounded to BF16 first.
    func multiply(_ x: UnsafePointer<Float>, rows: Int, matrix: OneDNNMatrix, bias: UnsafePointer<Float>?, accumulate: Bool,
                  into y: UnsafeMutablePointer<Float>) -> Bool {
        let primitives = matrix.blocks.map { block in
            self.primitive(Key(rows: rows, columns: block.columns.count, k: matrix.k, type: matrix.type.rawValue), block: block)
        }
        guard primitives.allSatisfy({ $0 != nil }) else { return false }
        var converted: UnsafeMutablePointer<UInt16>?
        defer { converted?.deallocate() }
        var input = UnsafeMutableRawPointer(mutating: x)
        if matrix.type == dnnl_bf16 {
            let count = rows * matrix.k
            let buffer = UnsafeMutablePointer<UInt16>.allocate(capacity: max(count, 1))
            Self.roundToBFloat16(x, into: buffer, count: count)
            converted = buffer
            input = UnsafeMutableRawPointer(buffer)
        }
        let failures = ManagedAtomicFlag()
        Parallel.forEach(matrix.blocks.count, minimumPerThread: 1) { range in
            for index in range {
                let block = matrix.blocks[index]
                guard let primitive = primitives[index] else { continue }
                // oneDNN 2.6's fast kernels write only dense outputs: each block lands in its own (rows, width) buffer,
                // and the epilogue moves it into y's columns, adding the bias and y's old values on the way.
                let width = block.columns.count
                let part = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
                defer { part.deallocate() }
                let ok = withStream { stream in
                    self.execute(primitive, block: block, stream: stream, input: input, rows: rows, k: matrix.k,
                                 type: matrix.type, output: part)
                } ?? false
                guard ok else {
                    failures.set()
                    continue
                }
                Self.epilogue(part, rows: rows, width: width, bias: bias.map { $0 + block.columns.lowerBound },
                              accumulate: accumulate, into: y + block.columns.lowerBound, stride: matrix.n)
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

    private func execute(_ primitive: Primitive, block: OneDNNMatrix.Block, stream: dnnl_stream_t, input: UnsafeMutableRawPointer,
                         rows: Int, k: Int, type: dnnl_data_type_t, output: UnsafeMutablePointer<Float>) -> Bool {
        var sourceDesc = Self.plain(rows, k, type), outputDesc = Self.plain(rows, block.columns.count, dnnl_f32)
        var scratchDesc = primitive.scratchpad
        var src: dnnl_memory_t?, dst: dnnl_memory_t?, scratch: dnnl_memory_t?
        let scratchBuffer = UnsafeMutableRawPointer.allocate(byteCount: max(primitive.scratchpadBytes, 64), alignment: 64)
        defer {
            scratchBuffer.deallocate()
            for memory in [src, dst, scratch] { if let memory { dnnl_memory_destroy(memory) } }
        }
        guard dnnl_memory_create(&src, &sourceDesc, engine, input) == dnnl_success,
              dnnl_memory_create(&dst, &outputDesc, engine, UnsafeMutableRawPointer(output)) == dnnl_success,
              dnnl_memory_create(&scratch, &scratchDesc, engine, scratchBuffer) == dnnl_success else { return false }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: src), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: block.memory),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: dst), dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: scratch)]
        let status = dnnl_primitive_execute(primitive.primitive, stream, Int32(args.count), &args)
        dnnl_stream_wait(stream)
        return status == dnnl_success
    }

    /// The cached primitive for a shape, made on first use; nil when oneDNN refuses it or offers only its reference
    /// kernel. Executions bring their own scratchpad, so one primitive may run on several threads at once.
    private func primitive(_ key: Key, block: OneDNNMatrix.Block) -> Primitive? {
        lock.lock()
        defer { lock.unlock() }
        if let cached = primitives[key] { return cached }
        if refused.contains(key) { return nil }
        if primitives.count >= 512 { primitives.removeAll() }  // many distinct batch shapes: start the cache over
        var source = Self.plain(key.rows, key.k, dnnl_data_type_t(key.type))
        var output = Self.plain(key.rows, key.columns, dnnl_f32)
        var weights = block.desc
        var desc = dnnl_matmul_desc_t()
        var attr: dnnl_primitive_attr_t?
        defer { if let attr { dnnl_primitive_attr_destroy(attr) } }
        var pd: dnnl_primitive_desc_t?, primitive: dnnl_primitive_t?
        guard dnnl_primitive_attr_create(&attr) == dnnl_success, let attr,
              dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success,
              dnnl_matmul_desc_init(&desc, &source, &weights, nil, &output) == dnnl_success,
              dnnl_primitive_desc_create(&pd, &desc, attr, engine, nil) == dnnl_success, let pd else {
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
        return made
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
        var source = Self.plain(rows, matrix.k, matrix.type), output = Self.plain(rows, block.columns.count, dnnl_f32)
        var weights = block.desc
        var desc = dnnl_matmul_desc_t()
        var pd: dnnl_primitive_desc_t?
        guard dnnl_matmul_desc_init(&desc, &source, &weights, nil, &output) == dnnl_success,
              dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil) == dnnl_success, let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        return Self.implementation(pd)
    }

    /// FP32 → BF16 bits, rounding to nearest even (as PyTorch's autocast does), vectorisable.
    static func roundToBFloat16(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, count: Int) {
        for i in 0..<count {
            let bits = x[i].bitPattern
            let rounded = bits &+ 0x7fff &+ ((bits >> 16) & 1)
            out[i] = x[i].isNaN ? UInt16(bits >> 16) | 0x40 : UInt16(truncatingIfNeeded: rounded >> 16)
        }
    }
}

/// A weight packed by oneDNN, one block of output columns per core, and the element type its products multiply in.
final class OneDNNMatrix: @unchecked Sendable {
    struct Block {
        let columns: Range<Int>
        let desc: dnnl_memory_desc_t
        let memory: dnnl_memory_t
    }

    let n: Int, k: Int
    let type: dnnl_data_type_t
    let blocks: [Block]

    init(n: Int, k: Int, type: dnnl_data_type_t, blocks: [Block]) {
        self.n = n
        self.k = k
        self.type = type
        self.blocks = blocks
    }

    /// Bytes of the packed weights.
    var byteCount: Int {
        blocks.reduce(0) { total, block in
            var d = block.desc
            return total + dnnl_memory_desc_get_size(&d)
        }
    }

    deinit { for block in blocks { dnnl_memory_destroy(block.memory) } }
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
