import Foundation
import MegatronBackend

/// A deliberately naive `Backend`, the reference every other backend is held to: plain loops, sums in Double,
/// libm's erf and tanh, attention with the whole (S, S) score matrix and an additive mask, weights rounded to the
/// storage format and multiplied exactly (no quantization: int8 models are held to exact products). It shares no
/// kernel with `CPUBackend`, so a model that gives the same outputs on both is written against the protocol alone.
///
/// ```swift
/// let model = try MegatronBERTModel(path: "tiny-model", backend: ReferenceBackend())
/// let report = BackendOpChecks.run(on: CPUBackend())  // every operation against this backend
/// ```
public final class ReferenceBackend: Backend, @unchecked Sendable {
    public let name = "reference"
    public init() {}
    public func computePrecision(for dtype: DType) -> ComputePrecision { .fp32 }
    public func unsupportedReason(for dtype: DType) -> String? { nil }
    public var capabilities: BackendCapabilities {
        BackendCapabilities(packedSequences: true, prefersPackedSequences: true, poolsSegments: true, runsOnHost: true)
    }
    public func report() -> BackendReport { BackendReport(fields: [("device", name)], products: "plain loops in Double") }

    final class Values: DeviceTensor {
        var shape: [Int]
        var values: [Float]
        init(_ shape: [Int], _ values: [Float]) {
            self.shape = shape
            self.values = values
        }
    }

    final class Matrix: PreparedMatrix, @unchecked Sendable {
        let shape: [Int]
        let dtype: DType
        let values: [Float]
        init(_ shape: [Int], _ dtype: DType, _ values: [Float]) {
            self.shape = shape
            self.dtype = dtype
            self.values = values
        }
    }

    final class Vector: PreparedVector, @unchecked Sendable {
        let values: [Float]
        init(_ values: [Float]) { self.values = values }
        var count: Int { values.count }
    }

    private func cast(_ x: any DeviceTensor) throws -> Values { try own(x, as: Values.self, "a tensor") }
    private func cast(_ w: any PreparedMatrix) throws -> Matrix { try own(w, as: Matrix.self, "a weight") }
    private func cast(_ v: any PreparedVector) throws -> [Float] { try own(v, as: Vector.self, "parameters").values }

    public func prepareMatrix(_ tensor: StoredTensor, dtype: DType, use: MatrixUse) throws -> any PreparedMatrix {
        Matrix(tensor.shape, dtype, NumberFormats.rounded(tensor.toFloats(), to: dtype.storage))
    }

    public func prepareVector(_ values: [Float]) -> any PreparedVector { Vector(values) }

    public func embed(ids: [[Int]], types: [[Int]], word: any PreparedMatrix, position: any PreparedMatrix,
                      tokenType: any PreparedMatrix) throws -> any DeviceTensor {
        let word = try cast(word), position = try cast(position), tokenType = try cast(tokenType)
        let h = word.shape[1]
        var out: [Float] = []
        for (row, typeRow) in zip(ids, types) {
            for (j, (id, type)) in zip(row, typeRow).enumerated() {
                for k in 0..<h {
                    out.append(Float(Double(word.values[id * h + k]) + Double(position.values[j * h + k])
                                     + Double(tokenType.values[type * h + k])))
                }
            }
        }
        return Values([out.count / max(h, 1), h], out)  // (B·S, H), or (Σ lengths, H) for ragged rows
    }

    public func linear(_ x: any DeviceTensor, weight: any PreparedMatrix, bias: (any PreparedVector)?,
                       accumulateInto: (any DeviceTensor)?) throws -> any DeviceTensor {
        let x = try cast(x), w = try cast(weight), b = try bias.map(cast)
        let m = w.shape[0], k = w.shape[1], n = x.values.count / k
        let y = try accumulateInto.map(cast) ?? Values([n, m], [Float](repeating: 0, count: n * m))
        for r in 0..<n {
            for c in 0..<m {
                var sum = Double(b?[c] ?? 0)
                for i in 0..<k { sum += Double(x.values[r * k + i]) * Double(w.values[c * k + i]) }
                y.values[r * m + c] = accumulateInto == nil ? Float(sum) : Float(Double(y.values[r * m + c]) + sum)
            }
        }
        return y
    }

    public func layerNorm(_ x: any DeviceTensor, residual: (any DeviceTensor)?, gamma: any PreparedVector,
                          beta: any PreparedVector, epsilon: Float, inPlace: Bool) throws -> any DeviceTensor {
        let x = try cast(x), g = try cast(gamma), b = try cast(beta), d = g.count
        var input = x.values
        if let residual { input = zip(input, try cast(residual).values).map { $0 + $1 } }
        var out = input
        for r in 0..<(input.count / d) {
            let row = input[(r * d)..<((r + 1) * d)].map(Double.init)
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
            for i in 0..<d {
                out[r * d + i] = Float((row[i] - mean) / (variance + Double(epsilon)).squareRoot() * Double(g[i]) + Double(b[i]))
            }
        }
        if inPlace {
            x.values = out
            return x
        }
        return Values(x.shape, out)
    }

    public func activate(_ x: any DeviceTensor, _ activation: Activation) throws {
        let x = try cast(x)
        x.values = x.values.map { v in
            let d = Double(v)
            switch activation {
            case .gelu: return Float(0.5 * d * (1 + erf(d / 2.0.squareRoot())))
            case .geluTanh: return Float(0.5 * d * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d))))
            case .relu: return Swift.max(v, 0)
            case .tanh: return Float(Foundation.tanh(d))
            }
        }
    }

    public func attention(qkv: any DeviceTensor, batch: Int, sequence s: Int, heads: Int, keep: [[Float]]) throws -> any DeviceTensor {
        let x: [Float] = try cast(qkv).values
        _ = try attentionWidth(qkv: try cast(qkv).shape, rows: batch * s, heads: heads)
        let rows = batch * s, ld = x.count / rows, h = ld / 3, d = h / heads
        // Q, K, V side by side in each row: part p of row r is x[r·ld + p·h ..< r·ld + (p+1)·h].
        func part(_ p: Int) -> [Float] {
            var values = [Float]()
            for r in 0..<rows { values += x[(r * ld + p * h)..<(r * ld + (p + 1) * h)] }
            return values
        }
        let q = part(0), k = part(1), v = part(2)
        var out = [Float](repeating: 0, count: q.count)
        for b in 0..<batch {
            for head in 0..<heads {
                for i in 0..<s {
                    // scores over every key; padding keys get FP32's lowest value added, as transformers does, which
                    // in FP32 leaves that lowest value (so a row with no key kept attends uniformly)
                    var scores = (0..<s).map { j -> Double in
                        guard keep[b][j] != 0 else { return -Double(Float.greatestFiniteMagnitude) }
                        var dot = 0.0
                        for c in 0..<d { dot += Double(q[(b * s + i) * h + head * d + c]) * Double(k[(b * s + j) * h + head * d + c]) }
                        return dot / Double(d).squareRoot()
                    }
                    let top = scores.max() ?? 0
                    scores = scores.map { exp($0 - top) }
                    let total = scores.reduce(0, +)
                    for c in 0..<d {
                        var sum = 0.0
                        for j in 0..<s { sum += scores[j] / total * Double(v[(b * s + j) * h + head * d + c]) }
                        out[(b * s + i) * h + head * d + c] = Float(sum)
                    }
                }
            }
        }
        return Values([batch * s, h], out)
    }

    public func gatherRows(_ x: any DeviceTensor, rows: [Int]) throws -> any DeviceTensor {
        let x = try cast(x), width = x.shape.last ?? 0
        return Values([rows.count, width], rows.flatMap { x.values[($0 * width)..<(($0 + 1) * width)] })
    }

    public func download(_ x: any DeviceTensor) throws -> Tensor {
        let x = try cast(x)
        return Tensor(shape: x.shape, values: x.values)
    }

    /// Packed sequences as padded ones: each segment's rows attend over that segment only (every key kept).
    public func attention(qkv: any DeviceTensor, segments: [Range<Int>], heads: Int) throws -> any DeviceTensor {
        let x = try cast(qkv), width = x.shape.last ?? 0
        try checkSegments(segments, rows: x.shape.first ?? 0, for: "packed attention")
        let h = try attentionWidth(qkv: x.shape, rows: x.shape.first ?? 0, heads: heads)
        var out: [Float] = []
        for segment in segments {
            let one = Values([segment.count, width], Array(x.values[(segment.lowerBound * width)..<(segment.upperBound * width)]))
            let context = try cast(try attention(qkv: one, batch: 1, sequence: segment.count, heads: heads,
                                                 keep: [[Float](repeating: 1, count: segment.count)]))
            out += context.values
        }
        return Values([x.shape.first ?? 0, h], out)
    }

    /// Each segment's rows summed in Double, their maximum, or the first row.
    public func poolSegments(_ x: any DeviceTensor, segments: [Range<Int>], _ pooling: SegmentPooling) throws -> any DeviceTensor {
        let x = try cast(x), h = x.shape.last ?? 0
        try checkSegments(segments, rows: x.shape.first ?? 0, for: "pooling")
        var out: [Float] = []
        for segment in segments {
            for c in 0..<h {
                let column = segment.map { Double(x.values[$0 * h + c]) }
                switch pooling {
                case .sum: out.append(Float(column.reduce(0, +)))
                case .max: out.append(Float(column.max() ?? 0))
                case .first: out.append(Float(column[0]))
                }
            }
        }
        return Values([segments.count, h], out)
    }
}
