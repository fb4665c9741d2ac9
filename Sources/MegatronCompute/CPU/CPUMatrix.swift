import TensorFiles

/// A weight matrix as the CPU backend keeps it: FP32, or FP16/BF16 bits widened to FP32 block by block right
/// before each product (so half the memory, and exactly FP32 math on the rounded values). Another storage
/// (int8 rows with per-row scales) is another case here. The pointer is into a memory-mapped checkpoint or into
/// a buffer `owner` keeps alive.
public final class CPUMatrix: PreparedMatrix, @unchecked Sendable {
    /// The element format and where the elements are.
    public enum Storage {
        case fp32(UnsafePointer<Float>)
        case fp16(UnsafePointer<UInt16>)
        case bf16(UnsafePointer<UInt16>)
    }

    public let shape: [Int]
    let storage: Storage
    let owner: AnyObject

    init(shape: [Int], storage: Storage, owner: AnyObject) {
        self.shape = shape
        self.storage = storage
        self.owner = owner
    }

    public var count: Int { shape.reduce(1, *) }

    public var dtype: DType {
        switch storage {
        case .fp32: .fp32
        case .fp16: .fp16
        case .bf16: .bf16
        }
    }

    /// Widens `count` elements starting at element `start` into `destination` as FP32.
    @inline(__always)
    func widen(from start: Int, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch storage {
        case .fp32(let p): destination.update(from: p + start, count: count)
        case .fp16(let p): NumberFormats.widenHalf(p + start, into: destination, count: count)
        case .bf16(let p): NumberFormats.widenBFloat16(p + start, into: destination, count: count)
        }
    }
}

/// Parameters the CPU backend reads as they are.
public final class CPUVector: PreparedVector, @unchecked Sendable {
    let values: [Float]
    init(_ values: [Float]) { self.values = values }
    public var count: Int { values.count }
}
