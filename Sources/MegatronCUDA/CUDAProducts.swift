import Foundation

/// One matrix product shape for cuBLASLt, in its column-major terms: D (m, n) = alpha · op(A) (m, k) · op(B) (k, n)
/// + beta · D (+ bias (m) per column), `batch` times with the given strides (in elements).
///
/// Row-major tensors enter as their transposes: a row-major (rows, cols) matrix is column-major (cols, rows). So
/// y (N, M) = x (N, K) Wᵀ is D (M, N) = op(W) · x with A = W (K, M, ld K) transposed and B = x (K, N, ld K).
struct GemmShape: Hashable {
    var transA: Bool, transB: Bool
    var m: Int, n: Int, k: Int
    var lda: Int, ldb: Int, ldd: Int
    var batch = 1
    var strideA = 0, strideB = 0, strideD = 0
    /// Element types of A and B (the same) and of C = D.
    var inputs: Element, output: Element
    var tf32 = false
    var bias = false
}

/// cuBLASLt descriptors, layouts and the chosen algorithm for one `GemmShape`, made once and reused.
final class GemmPlan {
    let desc: OpaquePointer?
    let a: OpaquePointer?, b: OpaquePointer?, d: OpaquePointer?
    let algorithm: UnsafeMutableRawPointer  // cublasLtMatmulAlgo_t (64 bytes)
    let workspaceBytes: Int
    /// The bias is added by cuBLASLt's epilogue (else by our add_bias kernel: cuBLASLt offered no algorithm with it).
    let epilogueBias: Bool

    init(desc: OpaquePointer?, a: OpaquePointer?, b: OpaquePointer?, d: OpaquePointer?, algorithm: UnsafeMutableRawPointer,
         workspaceBytes: Int, epilogueBias: Bool) {
        self.desc = desc
        self.a = a
        self.b = b
        self.d = d
        self.algorithm = algorithm
        self.workspaceBytes = workspaceBytes
        self.epilogueBias = epilogueBias
    }
}

/// Matrix products through cuBLASLt with FP32 accumulation: FP16/BF16 inputs on tensor cores, FP32 inputs in true
/// FP32 (TF32 only when asked).
final class CUDAProducts {
    private let device: CUDADevice
    private var plans: [GemmShape: GemmPlan] = [:]

    init(device: CUDADevice) { self.device = device }

    /// Runs D = alpha · op(A) op(B) + beta · D (+ bias). Addresses are device pointers; `bias` is in `shape.output`'s
    /// element type (for the epilogue) and FP32 (for the fallback kernel). Called with the device's lock held.
    func run(_ shape: GemmShape, a: UInt64, b: UInt64, d: UInt64, alpha: Float = 1, beta: Float = 0,
             bias: (typed: UInt64, f32: UInt64)? = nil) throws {
        let plan = try self.plan(shape)
        let lt = device.lt
        if shape.bias, plan.epilogueBias, var pointer = bias?.typed {
            try lt.check(lt.descSetAttribute(plan.desc, CUBLASLt.descBiasPointer, &pointer, 8), "bias pointer")
        }
        var alpha = alpha, beta = beta
        try lt.check(lt.matmul(device.handle, plan.desc, &alpha, UnsafeRawPointer(bitPattern: UInt(a)), plan.a,
                               UnsafeRawPointer(bitPattern: UInt(b)), plan.b, &beta, UnsafeRawPointer(bitPattern: UInt(d)), plan.d,
                               UnsafeMutableRawPointer(bitPattern: UInt(d)), plan.d, plan.algorithm,
                               UnsafeMutableRawPointer(bitPattern: UInt(device.workspace)), plan.workspaceBytes, nil),
                     "product (\(shape.m)x\(shape.k) by \(shape.k)x\(shape.n), batch \(shape.batch))")
        if shape.bias, !plan.epilogueBias, let bias {
            let total = shape.m * shape.n
            try device.launch("add_bias_\(shape.output.rawValue)", blocks: CUDADevice.blocks(for: total), threads: 256,
                              [.pointer(d), .pointer(bias.f32), .long(total), .int(shape.m)])
        }
    }

    private func plan(_ shape: GemmShape) throws -> GemmPlan {
        if let plan = plans[shape] { return plan }
        let plan: GemmPlan
        if shape.bias, let withEpilogue = try? makePlan(shape, epilogueBias: true) {
            plan = withEpilogue
        } else {
            plan = try makePlan(shape, epilogueBias: false)
        }
        plans[shape] = plan
        return plan
    }

    private func makePlan(_ s: GemmShape, epilogueBias: Bool) throws -> GemmPlan {
        let lt = device.lt
        let compute = s.inputs == .f32 && s.tf32 ? CUBLASLt.compute32FFastTF32 : CUBLASLt.compute32F
        var desc: OpaquePointer?
        try lt.check(lt.descCreate(&desc, compute, CUBLASLt.r32F), "descriptor")
        var transA: Int32 = s.transA ? 1 : 0, transB: Int32 = s.transB ? 1 : 0
        try lt.check(lt.descSetAttribute(desc, CUBLASLt.descTransA, &transA, 4), "transA")
        try lt.check(lt.descSetAttribute(desc, CUBLASLt.descTransB, &transB, 4), "transB")
        var epilogue = epilogueBias ? CUBLASLt.epilogueBias : CUBLASLt.epilogueDefault
        try lt.check(lt.descSetAttribute(desc, CUBLASLt.descEpilogue, &epilogue, 4), "epilogue")

        func layout(_ type: Element, rows: Int, cols: Int, ld: Int, stride: Int) throws -> OpaquePointer? {
            var layout: OpaquePointer?
            try lt.check(lt.layoutCreate(&layout, type.cudaType, UInt64(rows), UInt64(cols), Int64(ld)), "layout")
            if s.batch > 1 {
                var count = Int32(s.batch), offset = Int64(stride)
                try lt.check(lt.layoutSetAttribute(layout, CUBLASLt.layoutBatchCount, &count, 4), "batch count")
                try lt.check(lt.layoutSetAttribute(layout, CUBLASLt.layoutStridedBatchOffset, &offset, 8), "batch stride")
            }
            return layout
        }
        let a = try layout(s.inputs, rows: s.transA ? s.k : s.m, cols: s.transA ? s.m : s.k, ld: s.lda, stride: s.strideA)
        let b = try layout(s.inputs, rows: s.transB ? s.n : s.k, cols: s.transB ? s.k : s.n, ld: s.ldb, stride: s.strideB)
        let d = try layout(s.output, rows: s.m, cols: s.n, ld: s.ldd, stride: s.strideD)

        var preference: OpaquePointer?
        try lt.check(lt.preferenceCreate(&preference), "preference")
        var workspace = UInt64(device.workspaceBytes)
        try lt.check(lt.preferenceSetAttribute(preference, CUBLASLt.preferenceMaxWorkspace, &workspace, 8), "workspace")
        let result = UnsafeMutableRawPointer.allocate(byteCount: CUBLASLt.heuristicResultSize, alignment: 16)
        result.initializeMemory(as: UInt8.self, repeating: 0, count: CUBLASLt.heuristicResultSize)
        var found: Int32 = 0
        try lt.check(lt.heuristic(device.handle, desc, a, b, d, d, preference, 1, result, &found),
                     "found no algorithm for \(s.inputs.rawValue) x \(s.inputs.rawValue) -> \(s.output.rawValue) (\(s.m)x\(s.k) by \(s.k)x\(s.n))")
        guard found > 0, result.load(fromByteOffset: 72, as: Int32.self) == 0 else {
            result.deallocate()
            throw CUDAError("cuBLASLt has no algorithm for a \(s.inputs.rawValue) product (\(s.m)x\(s.k) by \(s.k)x\(s.n), batch \(s.batch)) on this GPU")
        }
        return GemmPlan(desc: desc, a: a, b: b, d: d, algorithm: result, workspaceBytes: result.load(fromByteOffset: 64, as: Int.self),
                        epilogueBias: epilogueBias)
    }
}
