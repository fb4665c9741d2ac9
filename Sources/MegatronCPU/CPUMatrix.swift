import TensorStorage

/// A weight matrix as the CPU backend keeps it: packed once by oneDNN for products (FP32, or BF16 where the CPU
/// multiplies BF16), and/or plain for row gathers and the OpenBLAS path — FP32 (half-precision weights widened once
/// where oneDNN does not pre-pack FP32), or FP16/BF16 bits widened to FP32 block by block right before each product.
/// `int8` matrices are only packed (quantized), but for a tied word embedding table, whose FP32 rows are kept for
/// its gathers.
/// A plain pointer is into a memory-mapped checkpoint or into a buffer `owner` keeps alive.
public final class CPUMatrix: PreparedMatrix, @unchecked Sendable {
    /// The element format and where the elements are.
    public enum Storage {
        case fp32(UnsafePointer<Float>)
        case fp16(UnsafePointer<UInt16>)
        case bf16(UnsafePointer<UInt16>)

        /// Bytes per element.
        var elementSize: Int {
            if case .fp32 = self { return 4 }
            return 2
        }
    }

    public let shape: [Int]
    public let dtype: DType
    /// The plain rows (gathers, OpenBLAS), when kept.
    let storage: Storage?
    let owner: AnyObject?
    /// The packed form for oneDNN products, when made.
    let packed: OneDNNMatrix?

    init(shape: [Int], dtype: DType, storage: Storage?, owner: AnyObject?, packed: OneDNNMatrix?) {
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
        self.owner = owner
        self.packed = packed
    }

    public var count: Int { shape.reduce(1, *) }

    /// Bytes it holds: the plain rows it keeps (those in a memory-mapped file included) and the packed form.
    public var heldBytes: Int { (storage.map { count * $0.elementSize } ?? 0) + (packed?.byteCount ?? 0) }

    /// Widens `count` elements starting at element `start` into `destination` as FP32 (plain storage only).
    @inline(__always)
    func widen(from start: Int, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch storage {
        case .fp32(let p)?: destination.update(from: p + start, count: count)
        case .fp16(let p)?: NumberFormats.widenHalf(p + start, into: destination, count: count)
        case .bf16(let p)?: NumberFormats.widenBFloat16(p + start, into: destination, count: count)
        case nil: preconditionFailure("internal error: a packed-only weight was read row by row (prepare it with use .gather)")
        }
    }
}

/// Parameters the CPU backend reads as they are.
public final class CPUVector: PreparedVector, @unchecked Sendable {
    let values: [Float]
    init(_ values: [Float]) { self.values = values }
    public var count: Int { values.count }
}
