import TensorFiles

/// A model parameter as it sits in memory: FP32, or FP16/BF16 bits widened on use.
/// The pointer is into a memory-mapped checkpoint or into a buffer `owner` keeps alive.
public struct Weight: @unchecked Sendable {
    public enum Storage {
        case fp32(UnsafePointer<Float>)
        case fp16(UnsafePointer<UInt16>)
        case bf16(UnsafePointer<UInt16>)
    }

    public let shape: [Int]
    public let storage: Storage
    let owner: AnyObject

    public var count: Int { shape.reduce(1, *) }

    public var dtype: DType {
        switch storage {
        case .fp32: .fp32
        case .fp16: .fp16
        case .bf16: .bf16
        }
    }

    /// Bytes this weight occupies.
    public var byteCount: Int { count * dtype.size }

    init(shape: [Int], storage: Storage, owner: AnyObject) {
        self.shape = shape
        self.storage = storage
        self.owner = owner
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
