@_exported import TensorStorage

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
    /// Where `capabilities.packedSequences`, rows may differ in length: each row's tokens (positions from 0) follow the
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

    // MARK: What it can do, and what it says about itself (asked, never found by casting)

    /// nil when this backend runs models kept in `dtype`; else why not, and what to choose instead (the message a
    /// user sees). Asked when a model is built on it (a backend kind that never runs a dtype can also say so before it
    /// is opened, as `CUDABackend.unsupportedReason(for:)` does for `Device.open`).
    func unsupportedReason(for dtype: DType) -> String?
    /// What this backend can do now: packed sequences, pooling on the device, where its work runs.
    var capabilities: BackendCapabilities { get }
    /// qkv (N, 3H) = Q | K | V → context (N, H) over sequences packed end to end: the rows `segments[i]` are sequence
    /// i, which attends over its own rows only, in `heads` heads of H / heads columns each. Segments are consecutive
    /// and cover 0..<N. Only where `capabilities.packedSequences` (the default throws).
    func attention(qkv: any DeviceTensor, segments: [Range<Int>], heads: Int) throws -> any DeviceTensor
    /// x (N, H) FP32 → (B, H) FP32: row i pools the rows `segments[i]` of x (`SegmentPooling`), so that sentence
    /// embeddings bring B vectors back from the device instead of N. Segments are consecutive, not empty, and cover
    /// 0..<N. Only where `capabilities.packedSequences` (the default throws).
    func poolSegments(_ x: any DeviceTensor, segments: [Range<Int>], _ pooling: SegmentPooling) throws -> any DeviceTensor
    /// What `info` and `bench` print about this backend (its libraries, kernels, device), read at the moment asked.
    func report() -> BackendReport
    /// The kernels that have run products so far, for `bench` (default: the backend's name).
    var kernelsUsed: [String] { get }
    /// Peak bytes of the device's own memory since `resetPeakDeviceBytes` (weights included); nil where the device
    /// memory is the host's (the CPU: see `System.peakResidentBytes`).
    var peakDeviceBytes: Int? { get }
    /// Starts a new peak for `peakDeviceBytes`.
    func resetPeakDeviceBytes()
    /// Per-kernel times since `resetProfile`, when this backend was asked to profile (nil otherwise).
    var profile: String? { get }
    /// Starts a new profile.
    func resetProfile()
}

/// What a backend can do, as the backend answers it: the model, the pipelines and the commands ask this instead
/// of casting to a concrete backend.
///
/// ```swift
/// if backend.capabilities.prefersPackedSequences { /* hand it packed batches */ }
/// ```
public struct BackendCapabilities: Sendable, Equatable {
    /// Runs sequences packed end to end without padding: ragged rows in `embed`,
    /// `attention(qkv:segments:heads:)`, `poolSegments`.
    public var packedSequences: Bool
    /// Whether packing pays on this backend now, so the pipelines should hand it packed batches (the CPU: always; the
    /// GPU: when its fused attention kernel runs, which packed attention is built for).
    public var prefersPackedSequences: Bool
    /// Tokens per packed forward pass the pipelines aim for (a longer sequence runs alone): enough to keep the device
    /// busy, few enough to keep activations small.
    public var packedTokensPerPass: Int
    /// Whether the pipelines should pool packed rows on this backend (`poolSegments`) rather than on the host.
    public var poolsSegments: Bool
    /// Whether its tensors are host memory and its work runs on the host's cores (the CPU): then a copy to the host
    /// is free, and host work beside it competes for the same cores rather than overlapping the device's.
    public var runsOnHost: Bool

    /// A backend that runs padded batches only.
    public init(packedSequences: Bool = false, prefersPackedSequences: Bool = false, packedTokensPerPass: Int = 2048,
                poolsSegments: Bool = false, runsOnHost: Bool) {
        self.packedSequences = packedSequences
        self.prefersPackedSequences = prefersPackedSequences && packedSequences
        self.packedTokensPerPass = packedTokensPerPass
        self.poolsSegments = poolsSegments && packedSequences
        self.runsOnHost = runsOnHost
    }
}

/// What a backend says about itself.
public struct BackendReport: Sendable {
    /// (key, value) pairs `info` prints, in order; values are `String`, `Int`, `Double`, `Bool` or `[String]`.
    public var fields: [(key: String, value: any Sendable)]
    /// One line naming what runs the products, for `bench`'s header.
    public var products: String
    /// The members `bench --json` adds to each point, each value already JSON (`"\"NVIDIA H100\""`, `true`, `123`).
    public var benchFields: [(key: String, json: String)]

    public init(fields: [(key: String, value: any Sendable)], products: String, benchFields: [(key: String, json: String)] = []) {
        self.fields = fields
        self.products = products
        self.benchFields = benchFields
    }
}

extension Backend {
    public func synchronize() throws {}

    public func attention(qkv: any DeviceTensor, segments: [Range<Int>], heads: Int) throws -> any DeviceTensor {
        throw BackendError("the \(name) backend runs padded batches only: it cannot run sequences packed without padding")
    }

    public func poolSegments(_ x: any DeviceTensor, segments: [Range<Int>], _ pooling: SegmentPooling) throws -> any DeviceTensor {
        throw BackendError("the \(name) backend runs padded batches only: it cannot pool packed sequences")
    }

    public var kernelsUsed: [String] { [name] }
    public var peakDeviceBytes: Int? { nil }
    public func resetPeakDeviceBytes() {}
    public var profile: String? { nil }
    public func resetProfile() {}

    /// `value` as this backend's own type `T`, or an error naming `what` it was given from another backend: the check
    /// every backend makes on the tensors, matrices and vectors it is handed (a library user may mix two backends).
    ///
    /// ```swift
    /// let tensor = try own(x, as: Tensor.self, "a tensor")
    /// ```
    public func own<T>(_ value: Any, as type: T.Type, _ what: String) throws -> T {
        guard let owned = value as? T else {
            throw BackendError("the \(name) backend was given \(what) made by another backend (\(Swift.type(of: value)))")
        }
        return owned
    }

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
