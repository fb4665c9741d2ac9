import TensorFiles

/// Activations resident on a backend's device, row-major: (rows, width) for the hidden states of a batch
/// flattened to B·S rows. Only the backend that made a tensor reads its elements; everyone else sees its shape,
/// and `Backend.download` gives a host copy.
public protocol DeviceTensor: AnyObject {
    var shape: [Int] { get }
}

/// A weight matrix (out, in) prepared by a backend for its kernels: kept in place, widened, packed, quantized or
/// uploaded, as the backend chooses. (Storage format is the `DType` it was prepared in; compute precision is the
/// backend's.)
public protocol PreparedMatrix: AnyObject, Sendable {
    var shape: [Int] { get }
    var dtype: DType { get }
}

extension PreparedMatrix {
    /// Bytes the matrix's elements take in its storage format.
    public var byteCount: Int { shape.reduce(1, *) * dtype.size }
}

/// What a weight matrix is for, so a backend keeps it in the form (or forms) it will be read in.
public enum MatrixUse: Sendable {
    /// Multiplied by (`linear`): a backend may keep only a packed form.
    case product
    /// Rows gathered (`embed`): an embedding table.
    case gather
    /// Both: the word embeddings when the masked-LM decoder is tied to them.
    case productAndGather
}

/// A vector of parameters (a bias, a LayerNorm scale or shift) prepared by a backend.
public protocol PreparedVector: AnyObject, Sendable {
    var count: Int { get }
}

/// Where the model's math runs: the few operations a BERT encoder and its heads are made of. The model code is
/// written once against this protocol; `CPUBackend` is the reference, other backends (CUDA) are held to its numbers.
///
/// Shapes, as the model uses them: x (N, K) rows of activations; weight (M, K); bias (M); y (N, M).
///
/// ```swift
/// let backend = CPUBackend()
/// let w = try backend.prepareMatrix(storedWeight, dtype: .fp16)      // (M, K)
/// let y = try backend.linear(x, weight: w, bias: nil, accumulateInto: nil) // (N, M)
/// print(try backend.download(y).shape)
/// ```
public protocol Backend: AnyObject, Sendable {
    /// "cpu", "cuda:0", … (for messages).
    var name: String { get }
    /// What its products multiply in for weights stored in `dtype`.
    func computePrecision(for dtype: DType) -> ComputePrecision

    /// A stored matrix (any floating-point format) made ready for `use`, kept in `dtype`: products must equal
    /// `computePrecision(for: dtype)` math on the values rounded to `dtype`.
    func prepareMatrix(_ tensor: StoredTensor, dtype: DType, use: MatrixUse) throws -> any PreparedMatrix
    /// Parameters used as they are (already rounded to the model's `dtype` by the caller).
    func prepareVector(_ values: [Float]) -> any PreparedVector

    /// word[ids] + position[0..<S] + tokenType[types]: ids, types (B, S) → (B·S, H). Ids are already validated.
    /// On a backend with `PackedAttention` rows may differ in length: each row's tokens (positions from 0) follow the
    /// previous row's, (Σ lengths, H).
    func embed(ids: [[Int]], types: [[Int]], word: any PreparedMatrix, position: any PreparedMatrix,
               tokenType: any PreparedMatrix) throws -> any DeviceTensor
    /// y = x Wᵀ + b: x (N, K), weight (M, K) → (N, M); with `accumulateInto` y (N, M), y += x Wᵀ + b in place
    /// (the residual connection fused into the product) and y is returned.
    func linear(_ x: any DeviceTensor, weight: any PreparedMatrix, bias: (any PreparedVector)?,
                accumulateInto: (any DeviceTensor)?) throws -> any DeviceTensor
    /// y = act(x Wᵀ + b): x (N, K), weight (M, K) → (N, M). A backend may apply the activation inside the product
    /// (the default: `linear`, then `activate`).
    func linear(_ x: any DeviceTensor, weight: any PreparedMatrix, bias: (any PreparedVector)?,
                activation: Activation) throws -> any DeviceTensor
    /// LayerNorm over the last dimension of x (+ residual, when given): (N, D) → (N, D); gamma, beta (D).
    /// In place (into x) when `inPlace`, else into a new tensor.
    func layerNorm(_ x: any DeviceTensor, residual: (any DeviceTensor)?, gamma: any PreparedVector,
                   beta: any PreparedVector, epsilon: Float, inPlace: Bool) throws -> any DeviceTensor
    /// x = act(x) in place.
    func activate(_ x: any DeviceTensor, _ activation: Activation) throws
    /// softmax(Q Kᵀ / √d + mask) V per sequence and head: qkv (B·S, 3H) holds Q, K and V side by side (columns
    /// 0..<H, H..<2H, 2H..<3H: the output of one product with the three weights stacked), each in `heads` heads of
    /// H / heads columns → context (B·S, H). `keep[b]` (S) is 1 for the keys of row b that are tokens, 0 for padding
    /// (queries are not masked; a row with no key kept attends uniformly, as HF's additive mask gives).
    func attention(qkv: any DeviceTensor, batch: Int, sequence: Int, heads: Int, keep: [[Float]]) throws -> any DeviceTensor
    /// The rows `rows` of x (N, D) → (rows.count, D), in that order.
    func gatherRows(_ x: any DeviceTensor, rows: [Int]) throws -> any DeviceTensor
    /// A host copy (or, on the CPU, the tensor itself) in FP32.
    func download(_ x: any DeviceTensor) throws -> Tensor
    /// Waits until the work asked of the device so far is done (the CPU's work is done when a call returns).
    func synchronize() throws
}

extension Backend {
    public func synchronize() throws {}

    public func linear(_ x: any DeviceTensor, weight: any PreparedMatrix, bias: (any PreparedVector)?,
                       activation: Activation) throws -> any DeviceTensor {
        let y = try linear(x, weight: weight, bias: bias, accumulateInto: nil)
        try activate(y, activation)
        return y
    }
}

/// A backend cannot do what was asked (a precision it has no kernels for, on this machine); the message says what
/// to choose instead.
public struct BackendError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// H of the `qkv` tensor the attention methods take: (rows, 3H) = Q | K | V, each of `heads` heads of H / heads
/// columns; anything else is an error that names the shape it was given.
///
/// ```swift
/// let h = try attentionWidth(qkv: [128, 3072], rows: 128, heads: 16)  // 1024
/// ```
public func attentionWidth(qkv shape: [Int], rows: Int, heads: Int) throws -> Int {
    let h = (shape.last ?? 0) / 3
    guard shape.count == 2, shape[0] == rows, h * 3 == shape[1], heads > 0, h % heads == 0 else {
        throw BackendError("attention takes (\(rows), 3H) = Q | K | V in \(heads) heads; it was given \(shape)")
    }
    return h
}

/// Attention over sequences packed end to end (no padding): a backend that has it runs a batch of sequences of
/// different lengths as (Σ lengths, H) activations, so every product but attention costs only the real tokens.
public protocol PackedAttention {
    /// qkv (N, 3H) = Q | K | V → context (N, H): the rows `segments[i]` are sequence i, which attends over its own
    /// rows only, in `heads` heads of H / heads columns each. Segments are consecutive and cover 0..<N.
    func attention(qkv: any DeviceTensor, segments: [Range<Int>], heads: Int) throws -> any DeviceTensor
    /// Whether packing pays on this backend now, so the pipelines should hand it packed batches (the CPU: always;
    /// the GPU: when its fused attention kernel runs, which packed attention is built for).
    var prefersPackedSequences: Bool { get }
    /// Tokens per packed forward pass the pipelines aim for (a longer sequence runs alone): enough to keep the device
    /// busy, few enough to keep activations small.
    var packedTokensPerPass: Int { get }
    /// x (N, H) FP32 → (B, H) FP32: row i pools the rows `segments[i]` of x (`SegmentPooling`), so that sentence
    /// embeddings bring B vectors back from the device instead of N. Segments are consecutive, not empty, and cover
    /// 0..<N.
    func poolSegments(_ x: any DeviceTensor, segments: [Range<Int>], _ pooling: SegmentPooling) throws -> any DeviceTensor
    /// Whether the pipelines should pool on this backend (`poolSegments`) rather than on the host.
    var poolsSegments: Bool { get }
}

/// How a packed sequence's rows become one vector on the device: their sum (mean pooling divides by the count), their
/// element-wise maximum, or the first row ([CLS]).
public enum SegmentPooling: Sendable, Hashable {
    case sum, max, first

    /// `rows` rows of `width` floats at `x` (rows ≥ 1) pooled into `out` (width floats) on this thread, as the host
    /// pools: sums in float64, rounded once.
    public func pool(_ x: UnsafePointer<Float>, rows: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(from: x, count: width)  // the first row
        switch self {
        case .first: break
        case .max:
            for t in 1..<Swift.max(rows, 1) {
                for j in 0..<width { out[j] = Swift.max(out[j], x[t * width + j]) }
            }
        case .sum:
            var sums = [Double](repeating: 0, count: width)
            for t in 0..<rows {
                for j in 0..<width { sums[j] += Double(x[t * width + j]) }
            }
            for j in 0..<width { out[j] = Float(sums[j]) }
        }
    }
}

/// The check every `poolSegments` and packed `attention` makes: consecutive, non-empty segments covering the N rows;
/// `what` names the operation in the error ("pooling", "packed attention").
public func checkSegments(_ segments: [Range<Int>], rows n: Int, for what: String) throws {
    guard let first = segments.first, first.lowerBound == 0, segments.last?.upperBound == n, segments.allSatisfy({ !$0.isEmpty }),
          zip(segments, segments.dropFirst()).allSatisfy({ $0.upperBound == $1.lowerBound }) else {
        throw BackendError("\(what) needs consecutive, non-empty segments covering the \(n) rows; it was given \(segments.prefix(4))…")
    }
}

extension PackedAttention {
    public var prefersPackedSequences: Bool { true }
    public var poolsSegments: Bool { true }
    /// Measured on 2 cores (`bench`, MiniLM): 32 sequences of 32 tokens run ~1.3× faster per token than 8; the embed
    /// job (MiniLM and 345M) took the same time, within the machine's ±10% noise, with passes of 512 to 4,096 tokens.
    public var packedTokensPerPass: Int { 2048 }
}
