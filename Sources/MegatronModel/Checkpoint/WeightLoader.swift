import MegatronBackend
import TensorFiles

/// Hands out a checkpoint's tensors by their Hugging Face names, strictly, prepared by the model's backend: a
/// missing, wrong-shaped or non-float tensor is an error that names it, and `finish` rejects any tensor nobody
/// asked for. Matrices are kept in the requested `DType` (in place in the mapped file when it already matches, on
/// the CPU); vectors (biases, LayerNorm) are rounded to that `DType` too, as `model.half()` would, then held as FP32.
///
/// With `random`, it makes up every tensor asked for instead (for benchmarks without a checkpoint),
/// so the model's layers name their weights in one place either way.
final class WeightLoader {
    private let tensors: [String: StoredTensor]
    private var used = Set<String>()
    private var random: RandomWeights?
    let dtype: DType
    let backend: any Backend
    /// "bert." for head checkpoints, "" for a bare encoder's.
    let encoderPrefix: String

    init(tensors: [String: StoredTensor], dtype: DType, backend: any Backend) {
        self.tensors = tensors
        self.dtype = dtype
        self.backend = backend
        encoderPrefix = tensors.keys.contains { $0.hasPrefix("bert.") } ? "bert." : ""
    }

    /// A loader that invents weights (uniform, std 0.02; LayerNorm scales near 1) from `seed`.
    init(randomWithSeed seed: UInt64, dtype: DType, encoderPrefix: String, backend: any Backend) {
        tensors = [:]
        random = RandomWeights(seed: seed)
        self.dtype = dtype
        self.backend = backend
        self.encoderPrefix = encoderPrefix
    }

    var names: Set<String> { Set(tensors.keys) }

    /// Whether it makes up weights (a benchmark model) rather than reading a checkpoint.
    var isRandom: Bool { random != nil }

    func contains(_ name: String) -> Bool { random != nil || tensors[name] != nil }

    /// Marks tensors that are known and deliberately unused (tied copies, buffers).
    func ignore(_ name: String) { if tensors[name] != nil { used.insert(name) } }

    private func take(_ name: String, _ shape: [Int]) throws -> StoredTensor {
        guard let t = tensors[name] else {
            throw ModelError("missing tensor '\(name)' (shape \(shape)) in the checkpoint")
        }
        guard t.shape == shape else {
            throw ModelError("tensor '\(name)' has shape \(t.shape) but config.json implies \(shape); does the config belong to these weights?")
        }
        guard t.dtype.isFloatingPoint else {
            throw ModelError("tensor '\(name)' is stored as \(t.dtype.rawValue); weights must be F32, F16, BF16 or F64")
        }
        used.insert(name)
        return t
    }

    /// A matrix (or embedding table), prepared by the backend in `dtype` for `use`.
    func matrix(_ name: String, _ shape: [Int], use: MatrixUse = .product) throws -> any PreparedMatrix {
        let stored = random != nil ? random!.matrix(shape, format: dtype.storage) : try take(name, shape)
        return try backend.prepareMatrix(stored, dtype: dtype, use: use)
    }

    /// A vector, its values rounded to `dtype` (biases and LayerNorm parameters are small).
    func vector(_ name: String, _ count: Int) throws -> any PreparedVector {
        let values = random != nil ? random!.vector(count, centre: name.hasSuffix("weight") ? 1 : 0)
            : try take(name, [count]).toFloats()
        return backend.prepareVector(NumberFormats.rounded(values, to: dtype.storage))
    }

    /// Linear layers that read the same input, their weights (out, in) stacked into one (Σ out, in) matrix and their
    /// biases into one vector, so one product computes them all (Q, K and V: one (3H, H) product instead of three).
    /// Each layer's tensors are checked (and, with `random`, made up) in the order separate layers would be.
    func stackedLinear(_ prefixes: [String], in inFeatures: Int, out outFeatures: Int) throws
        -> (weight: any PreparedMatrix, bias: any PreparedVector) {
        var weights = [StoredTensor](), biases = [Float]()
        for prefix in prefixes {
            if random != nil {
                weights.append(random!.matrix([outFeatures, inFeatures], format: dtype.storage))
                biases += random!.vector(outFeatures, centre: 0)
            } else {
                weights.append(try take(prefix + ".weight", [outFeatures, inFeatures]))
                biases += try take(prefix + ".bias", [outFeatures]).toFloats()
            }
        }
        let stacked = try StoredTensor.stacked(weights, format: dtype.storage)  // (prefixes.count · out, in)
        return (try backend.prepareMatrix(stacked, dtype: dtype, use: .product),
                backend.prepareVector(NumberFormats.rounded(biases, to: dtype.storage)))
    }

    /// Rejects every tensor that was never taken or ignored.
    func finish() throws {
        let unexpected = tensors.keys.filter { !used.contains($0) }.sorted()
        guard unexpected.isEmpty else {
            let shown = unexpected.prefix(8).map { "'\($0)'" }.joined(separator: ", ")
            let more = unexpected.count > 8 ? " and \(unexpected.count - 8) more" : ""
            throw ModelError("unexpected tensor\(unexpected.count == 1 ? "" : "s") \(shown)\(more) in the checkpoint: the config's architecture and head do not use \(unexpected.count == 1 ? "it" : "them"); is this the right config.json?")
        }
    }
}
