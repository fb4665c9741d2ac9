import Foundation
import MegatronBackend

/// One operation on one shape and precision, run on a backend and on `ReferenceBackend` from the same inputs.
public struct OpCheckResult: Sendable {
    /// What ran: the operation, the storage precision, the shapes ("linear fp16 x(17, 67) w(33, 67) +bias +residual").
    public var name: String
    /// max |backend − reference| / max(1, max |reference|) over the outputs.
    public var error: Double
    /// The bound for the backend's compute precision on this dtype (`BackendOpChecks.tolerance`).
    public var tolerance: Double
    /// Why the operation failed to run (it threw, or gave the wrong shape); nil when it ran.
    public var failure: String?

    public var passed: Bool { failure == nil && error <= tolerance }
}

/// Every `Backend` operation on random shapes — odd sizes, padding, packed sequences, every activation and pooling,
/// each storage precision the backend runs — against `ReferenceBackend`, as ggml's `test-backend-ops` holds each
/// backend to its CPU reference. `megatron-bert test-ops` runs it on any device (the GPU machine runs it from
/// scripts/gpu-check.sh); the tests run it on the CPU backend.
///
/// ```swift
/// let results = BackendOpChecks.run(on: CPUBackend())
/// print(results.filter { !$0.passed }.map(\.name))  // []
/// ```
public enum BackendOpChecks {
    /// The largest relative error a backend may show for products in `precision`: FP32 1e-4 (sums in another order
    /// than the reference's Double, vectorised exp / erf); FP16 1e-2 (activations rounded to 11 bits); BF16 4e-2
    /// (8 bits); int8 5e-2 (activations quantized per row to 8 bits, weights per output channel).
    public static func tolerance(_ precision: ComputePrecision) -> Double {
        switch precision {
        case .fp32: 1e-4
        case .fp16: 1e-2
        case .bf16: 4e-2
        case .int8: 5e-2
        }
    }

    /// Runs every check on `backend` for each of `dtypes` it supports (`Backend.unsupportedReason`), with inputs drawn
    /// from `seed`; `filter` keeps the checks whose name contains it.
    public static func run(on backend: any Backend, dtypes: [DType] = DType.allCases, seed: UInt64 = 1,
                           filter: String? = nil) -> [OpCheckResult] {
        let reference = ReferenceBackend()
        var results: [OpCheckResult] = []
        for dtype in dtypes where backend.unsupportedReason(for: dtype) == nil {
            var draws = Draws(seed: seed)
            let tolerance = tolerance(backend.computePrecision(for: dtype))
            for check in checks(dtype: dtype, packed: backend.capabilities.packedSequences, draws: &draws)
            where filter.map({ check.name.contains($0) }) ?? true {
                results.append(compare(check, on: backend, reference: reference, tolerance: tolerance))
            }
        }
        return results
    }

    /// One check: its name and the operation, written once against `Backend` and run on both backends.
    struct Check {
        var name: String
        var run: (any Backend) throws -> Tensor
    }

    static func compare(_ check: Check, on backend: any Backend, reference: ReferenceBackend, tolerance: Double) -> OpCheckResult {
        var result = OpCheckResult(name: check.name, error: 0, tolerance: tolerance, failure: nil)
        do {
            let expected = try check.run(reference), got = try check.run(backend)
            guard got.shape == expected.shape else {
                result.failure = "shape \(got.shape), expected \(expected.shape)"
                return result
            }
            let scale = max(1, expected.toArray().map { abs(Double($0)) }.max() ?? 0)
            var worst = 0.0
            for (a, b) in zip(got.toArray(), expected.toArray()) {
                let difference = abs(Double(a) - Double(b))
                worst = max(worst, difference.isNaN ? .infinity : difference)
            }
            result.error = worst / scale
        } catch {
            result.failure = "\(error)"
        }
        return result
    }

    // MARK: - The checks

    static func checks(dtype: DType, packed: Bool, draws: inout Draws) -> [Check] {
        var checks: [Check] = []
        let d = dtype.rawValue

        // Embeddings: padded rows, and ragged rows (packed) where the backend runs them.
        for (vocab, width, shapes) in [(11, 24, [[5, 5, 5]]), (7, 13, [[1, 1]]), (29, 40, [[1, 4, 7]])] where packed || Set(shapes[0]).count == 1 {
            let word = draws.values(vocab * width), position = draws.values(9 * width), types = draws.values(2 * width)
            let lengths = shapes[0]
            let ids = lengths.map { n in (0..<n).map { _ in draws.index(vocab) } }, typeIDs = lengths.map { n in (0..<n).map { _ in draws.index(2) } }
            checks.append(Check(name: "embed \(d) ids\(lengths) vocab \(vocab) width \(width)") { backend in
                try backend.download(try backend.embed(
                    ids: ids, types: typeIDs,
                    word: try backend.prepareMatrix(stored(word, [vocab, width]), dtype: dtype, use: .gather),
                    position: try backend.prepareMatrix(stored(position, [9, width]), dtype: dtype, use: .gather),
                    tokenType: try backend.prepareMatrix(stored(types, [2, width]), dtype: dtype, use: .gather)))
            })
        }

        // Products: odd sizes, with and without bias, the residual added in place.
        for (n, k, m) in [(1, 8, 8), (3, 24, 40), (17, 67, 33), (64, 128, 96), (2, 1024, 16)] {
            let x = draws.values(n * k), w = draws.values(m * k, scale: 1 / Double(k).squareRoot()), b = draws.values(m)
            let residual = draws.values(n * m)
            for (withBias, withResidual) in [(true, false), (false, false), (true, true)] {
                checks.append(Check(name: "linear \(d) x(\(n), \(k)) w(\(m), \(k))\(withBias ? " +bias" : "")\(withResidual ? " +residual" : "")") { backend in
                    let input = try upload(x, rows: n, width: k, dtype: dtype, on: backend)
                    let weight = try backend.prepareMatrix(stored(w, [m, k]), dtype: dtype, use: .product)
                    let into = withResidual ? try upload(residual, rows: n, width: m, dtype: dtype, on: backend) : nil
                    return try backend.download(try backend.linear(input, weight: weight, bias: withBias ? backend.prepareVector(b) : nil,
                                                                   accumulateInto: into))
                })
            }
        }

        // Products with the activation applied (inside the product where the backend fuses it), and activations alone.
        let activations: [Activation] = [.gelu, .geluTanh, .relu, .tanh]
        for activation in activations {
            let (n, k, m) = (9, 48, 72)
            let x = draws.values(n * k), w = draws.values(m * k, scale: 2 / Double(k).squareRoot()), b = draws.values(m)
            checks.append(Check(name: "linear \(d) x(\(n), \(k)) w(\(m), \(k)) +bias \(activation)") { backend in
                try backend.download(try backend.linear(try upload(x, rows: n, width: k, dtype: dtype, on: backend),
                                                        weight: try backend.prepareMatrix(stored(w, [m, k]), dtype: dtype, use: .product),
                                                        bias: backend.prepareVector(b), activation: activation))
            })
            let y = draws.values(13 * 37, scale: 4)
            checks.append(Check(name: "activate \(d) (13, 37) \(activation)") { backend in
                let t = try upload(y, rows: 13, width: 37, dtype: dtype, on: backend)
                try backend.activate(t, activation)
                return try backend.download(t)
            })
        }

        // LayerNorm: with and without the residual, in place or not, both epsilons the models use.
        for (rows, width, epsilon) in [(7, 24, Float(1e-12)), (5, 1024, Float(1e-5)), (3, 37, Float(1e-5))] {
            let x = draws.values(rows * width, scale: 3, offset: 0.5), r = draws.values(rows * width)
            let gamma = draws.values(width, offset: 1), beta = draws.values(width)
            for (withResidual, inPlace) in [(false, true), (true, true), (true, false)] {
                checks.append(Check(name: "layerNorm \(d) (\(rows), \(width)) eps \(epsilon)\(withResidual ? " +residual" : "")\(inPlace ? " in place" : "")") { backend in
                    let input = try upload(x, rows: rows, width: width, dtype: dtype, on: backend)
                    let residual = withResidual ? try upload(r, rows: rows, width: width, dtype: dtype, on: backend) : nil
                    let out = try backend.layerNorm(input, residual: residual, gamma: backend.prepareVector(gamma),
                                                    beta: backend.prepareVector(beta), epsilon: epsilon, inPlace: inPlace)
                    return try backend.download(out)
                })
            }
        }

        // Attention over padded batches: padding keys masked, one row with no key kept (it attends uniformly).
        for (batch, sequence, heads, width, lengths) in [(2, 7, 2, 16, [7, 3]), (3, 33, 4, 64, [33, 20, 1]),
                                                          (2, 19, 2, 128, [19, 0]), (1, 1, 1, 8, [1])] {
            let qkv = draws.values(batch * sequence * 3 * width, scale: 2)
            let keep = lengths.map { n in (0..<sequence).map { Float($0 < n ? 1 : 0) } }
            checks.append(Check(name: "attention \(d) batch \(batch) sequence \(sequence) heads \(heads) width \(width) lengths \(lengths)") { backend in
                try backend.download(try backend.attention(qkv: try upload(qkv, rows: batch * sequence, width: 3 * width, dtype: dtype, on: backend),
                                                           batch: batch, sequence: sequence, heads: heads, keep: keep))
            }) 
        }

        // Attention over packed sequences, and pooling of packed rows.
        if packed {
            for (lengths, heads, width) in [([3, 7, 1], 2, 16), ([40, 5, 17], 2, 128)] {
                let rows = lengths.reduce(0, +), qkv = draws.values(rows * 3 * width, scale: 2)
                checks.append(Check(name: "attention \(d) packed lengths \(lengths) heads \(heads) width \(width)") { backend in
                    try backend.download(try backend.attention(qkv: try upload(qkv, rows: rows, width: 3 * width, dtype: dtype, on: backend),
                                                               segments: segments(lengths), heads: heads))
                })
            }
            let lengths = [4, 1, 9], x = draws.values(14 * 24, scale: 3)
            for pooling in [SegmentPooling.sum, .max, .first] {
                checks.append(Check(name: "poolSegments \(d) lengths \(lengths) width 24 \(pooling)") { backend in
                    try backend.download(try backend.poolSegments(try upload(x, rows: 14, width: 24, dtype: dtype, on: backend),
                                                                  segments: segments(lengths), pooling))
                })
            }
        }

        // Rows gathered, repeated and out of order.
        let x = draws.values(6 * 24)
        checks.append(Check(name: "gatherRows \(d) (6, 24) rows [4, 0, 4, 2]") { backend in
            try backend.download(try backend.gatherRows(try upload(x, rows: 6, width: 24, dtype: dtype, on: backend), rows: [4, 0, 4, 2]))
        })
        return checks
    }

    // MARK: - Inputs

    /// `values` (rows, width) put on `backend` the only way the protocol has to make activations: as the rows of an
    /// embedding table kept in `dtype`'s storage format, plus a small position table — so that, as in a model, the
    /// activations are sums that `dtype` cannot hold exactly and a product that rounds its inputs shows it.
    static func upload(_ values: [Float], rows: Int, width: Int, dtype: DType, on backend: any Backend) throws -> any DeviceTensor {
        let offsets = (0..<rows * width).map { Float(sin(Double($0) * 0.7)) / 97 }
        return try backend.embed(ids: [Array(0..<rows)], types: [[Int](repeating: 0, count: rows)],
                                 word: try backend.prepareMatrix(stored(values, [rows, width]), dtype: dtype, use: .gather),
                                 position: try backend.prepareMatrix(stored(offsets, [rows, width]), dtype: dtype, use: .gather),
                                 tokenType: try backend.prepareMatrix(stored([Float](repeating: 0, count: width), [1, width]), dtype: dtype,
                                                                      use: .gather))
    }

    /// An FP32 stored tensor holding `values` in `shape`.
    static func stored(_ values: [Float], _ shape: [Int]) -> StoredTensor {
        let owned = OwnedBytes(count: values.count * 4)
        values.withUnsafeBytes { owned.pointer.copyMemory(from: $0) }
        return StoredTensor(dtype: .float32, shape: shape, bytes: UnsafeRawBufferPointer(rebasing: owned.bytes[0..<(values.count * 4)]),
                            owner: owned)
    }

    /// Consecutive segments of `lengths` rows.
    static func segments(_ lengths: [Int]) -> [Range<Int>] {
        var start = 0
        return lengths.map { n in
            defer { start += n }
            return start..<start + n
        }
    }

    /// Seeded draws (`SeededRandom`): the same inputs on every machine.
    struct Draws {
        var random: SeededRandom
        init(seed: UInt64) { random = SeededRandom(seed: seed) }

        /// `count` values uniform in offset ± scale.
        mutating func values(_ count: Int, scale: Double = 1, offset: Double = 0) -> [Float] {
            (0..<count).map { _ in Float(offset + scale * (random.uniform() * 2 - 1)) }
        }

        mutating func index(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
    }
}
