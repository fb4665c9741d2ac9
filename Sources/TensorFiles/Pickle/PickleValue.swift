/// A value read from a Python pickle, as inert data: nothing a pickle names is ever called.
///
/// Classes the reader does not understand stay as `.object` with the global's name, its arguments
/// and its state, so a caller can inspect them (`argparse.Namespace`, Megatron enums, …).
public indirect enum PickleValue: CustomStringConvertible, @unchecked Sendable {
    case none
    case bool(Bool)
    case int(Int)
    /// A Python int that does not fit in 64 bits: little-endian two's complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A reference to `module.name` (a class or function), never resolved to code.
    case global(module: String, name: String)
    /// The result of calling or instantiating a global we do not interpret.
    case object(PickleObject)
    /// A PyTorch storage named by a persistent id.
    case storage(TorchStorageRef)
    /// A PyTorch tensor rebuilt from a storage view.
    case tensor(TorchTensorRef)

    public var description: String {
        switch self {
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): "\(i)"
        case .bigInt(let b): "<int of \(b.count) bytes>"
        case .float(let d): "\(d)"
        case .string(let s): "'\(s)'"
        case .bytes(let b): "<bytes \(b.count)>"
        case .tuple(let t): "(" + t.map(\.description).joined(separator: ", ") + (t.count == 1 ? ",)" : ")")
        case .list(let l): "[" + l.items.map(\.description).joined(separator: ", ") + "]"
        case .dict(let d): "{" + d.items.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .global(let m, let n): "\(m).\(n)"
        case .object(let o): o.description
        case .storage(let s): "<storage \(s.dtype) key=\(s.key) numel=\(s.count)>"
        case .tensor(let t): "<tensor \(t.storage.dtype) \(t.size)>"
        }
    }

    public var int: Int? {
        switch self {
        case .int(let i): i
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Items of a tuple or list.
    public var elements: [PickleValue]? {
        switch self {
        case .tuple(let t): t
        case .list(let l): l.items
        default: nil
        }
    }
}

/// A Python list (a reference: pickles append to lists after creating them).
public final class PickleList {
    public var items: [PickleValue]
    public init(_ items: [PickleValue] = []) { self.items = items }
}

/// A Python dict in insertion order, with the attributes a BUILD may set on it (an `OrderedDict`'s `_metadata`).
public final class PickleDict {
    public var items: [(key: PickleValue, value: PickleValue)] = []
    public var attributes: PickleValue = .none
    private var stringIndex: [String: Int] = [:]
    public init() {}

    /// The value under a string key.
    public subscript(key: String) -> PickleValue? {
        stringIndex[key].map { items[$0].value }
    }

    /// Sets a value, replacing an existing string key as Python would.
    public func set(_ key: PickleValue, _ value: PickleValue) {
        if let s = key.string {
            if let i = stringIndex[s] { items[i].value = value; return }
            stringIndex[s] = items.count
        }
        items.append((key, value))
    }
}

/// An instance of a class, or the result of a call, that the reader keeps as data.
public final class PickleObject: CustomStringConvertible {
    public let module: String
    public let name: String
    public var arguments: [PickleValue]
    /// What BUILD set (usually a dict of attributes), or `.none`.
    public var state: PickleValue = .none
    public var listItems: [PickleValue] = []
    public var dictItems: [(key: PickleValue, value: PickleValue)] = []

    public init(module: String, name: String, arguments: [PickleValue]) {
        self.module = module
        self.name = name
        self.arguments = arguments
    }

    /// An attribute set by BUILD (the state dict's key).
    public func attribute(_ key: String) -> PickleValue? {
        if case .dict(let d) = state { return d[key] }
        if case .tuple(let t) = state, t.count == 2, case .dict(let d) = t[1] { return d[key] }
        return nil
    }

    public var description: String {
        "\(module).\(name)(" + arguments.map(\.description).joined(separator: ", ") + ")"
            + (state.isNone ? "" : " state=\(state)")
    }
}

extension PickleValue {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}

/// A PyTorch storage referenced from a pickle: its element type and where its bytes are.
public struct TorchStorageRef: Sendable {
    /// The storage class name: "FloatStorage", "HalfStorage", "BFloat16Storage", …
    public var dtype: String
    /// The key naming its bytes (`data/<key>` in a zip checkpoint).
    public var key: String
    /// Number of elements.
    public var count: Int
}

/// A tensor view of a storage: offset, sizes and strides, all in elements.
public struct TorchTensorRef: Sendable {
    public var storage: TorchStorageRef
    public var offset: Int
    public var size: [Int]
    public var stride: [Int]
}
