import Foundation
import MegatronCompute
import TensorFiles

/// A deliberately naive `Backend` for the tests: plain loops, sums in Double, libm's erf and tanh, attention with
/// the whole (S, S) score matrix and an additive mask. It shares no kernel with `CPUBackend`, so a model that gives
/// the same outputs on both is written against the protocol alone — the reference the CUDA backend is held to.
final class NaiveBackend: Backend, @unchecked Sendable {
    let name = "naive"
    func computePrecision(for dtype: DType) -> ComputePrecision { .fp32 }

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

    private func cast(_ x: any DeviceTensor) -> Values { x as! Values }
    private func cast(_ w: any PreparedMatrix) -> Matrix { w as! Matrix }
    private func cast(_ v: any PreparedVector) -> [Float] { (v as! Vector).values }

    func prepareMatrix(_ tensor: StoredTensor, dtype: DType, use: MatrixUse) throws -> any PreparedMatrix {
        Matrix(tensor.shape, dtype, NumberFormats.rounded(tensor.toFloats(), to: dtype.storage))
    }

    func prepareVector(_ values: [Float]) -> any PreparedVector { Vector(values) }

    func embed(ids: [[Int]], types: [[Int]], word: any PreparedMatrix, position: any PreparedMatrix,
               tokenType: any PreparedMatrix) -> any DeviceTensor {
        let word = cast(word), position = cast(position), tokenType = cast(tokenType)
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
        return Values([ids.count * (ids.first?.count ?? 0), h], out)
    }

    func linear(_ x: any DeviceTensor, weight: any PreparedMatrix, bias: (any PreparedVector)?,
                accumulateInto: (any DeviceTensor)?) -> any DeviceTensor {
        let x = cast(x), w = cast(weight), b = bias.map(cast)
        let m = w.shape[0], k = w.shape[1], n = x.values.count / k
        let y = accumulateInto.map(cast) ?? Values([n, m], [Float](repeating: 0, count: n * m))
        for r in 0..<n {
            for c in 0..<m {
                var sum = Double(b?[c] ?? 0)
                for i in 0..<k { sum += Double(x.values[r * k + i]) * Double(w.values[c * k + i]) }
                y.values[r * m + c] = accumulateInto == nil ? Float(sum) : Float(Double(y.values[r * m + c]) + sum)
            }
        }
        return y
    }

    func layerNorm(_ x: any DeviceTensor, residual: (any DeviceTensor)?, gamma: any PreparedVector,
                   beta: any PreparedVector, epsilon: Float, inPlace: Bool) -> any DeviceTensor {
        let x = cast(x), g = cast(gamma), b = cast(beta), d = g.count
        var input = x.values
        if let residual { input = zip(input, cast(residual).values).map { $0 + $1 } }
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

    func activate(_ x: any DeviceTensor, _ activation: Activation) {
        let x = cast(x)
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

    func attention(qkv: any DeviceTensor, batch: Int, sequence s: Int, heads: Int, keep: [[Float]]) -> any DeviceTensor {
        let x: [Float] = cast(qkv).values
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
                    // scores over every key; padding keys get the dtype's lowest value added, as transformers does
                    var scores = (0..<s).map { j -> Double in
                        var dot = 0.0
                        for c in 0..<d { dot += Double(q[(b * s + i) * h + head * d + c]) * Double(k[(b * s + j) * h + head * d + c]) }
                        return dot / Double(d).squareRoot() + (keep[b][j] == 0 ? -Double(Float.greatestFiniteMagnitude) : 0)
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

    func gatherRows(_ x: any DeviceTensor, rows: [Int]) -> any DeviceTensor {
        let x = cast(x), width = x.shape.last ?? 0
        return Values([rows.count, width], rows.flatMap { x.values[($0 * width)..<(($0 + 1) * width)] })
    }

    func download(_ x: any DeviceTensor) -> Tensor {
        let x = cast(x)
        return Tensor(shape: x.shape, values: x.values)
    }
}
