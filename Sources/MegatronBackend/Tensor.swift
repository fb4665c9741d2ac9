/// A dense, row-major FP32 array with a shape: activations and outputs.
///
/// ```swift
/// let t = Tensor(shape: [2, 3])
/// t[1 * 3 + 2] = 1
/// print(t.toArray())
/// ```
public final class Tensor: @unchecked Sendable {
    public internal(set) var shape: [Int]
    public let count: Int
    /// The elements, 64-byte aligned, owned by this tensor.
    public let data: UnsafeMutablePointer<Float>

    /// A zero-filled tensor.
    public convenience init(shape: [Int]) {
        self.init(uninitializedShape: shape)
        data.initialize(repeating: 0, count: max(count, 1))
    }

    /// A tensor whose elements the caller will all overwrite before reading (skips the zero fill).
    public init(uninitializedShape shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        data = BufferPool.shared.take(max(count, 1) * 4).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// A tensor holding a copy of `values`.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(values.count == count, "Tensor: \(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { BufferPool.shared.give(UnsafeMutableRawPointer(data), max(count, 1) * 4) }

    /// Element `index` of the row-major data.
    public subscript(index: Int) -> Float {
        get { data[index] }
        set { data[index] = newValue }
    }

    /// The elements as an array.
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Gives the same elements another shape of the same element count (no copy).
    public func reshape(_ newShape: [Int]) -> Tensor {
        assert(newShape.reduce(1, *) == count, "reshape \(shape) -> \(newShape)")
        shape = newShape
        return self
    }

    /// The raw little-endian FP32 bytes (for writing safetensors).
    public var bytes: [UInt8] {
        Array(UnsafeRawBufferPointer(start: data, count: count * 4))
    }
}

/// On the CPU, activations are host tensors.
extension Tensor: DeviceTensor {}
