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

    /// Python-like text, cut off with "…" after `PickleValue.descriptionLimit` characters (a pickle may share
    /// one container in exponentially many places).
    public var description: String {
        var out = ""
        var budget = Self.descriptionLimit
        describe(into: &out, budget: &budget, depth: 0)
        return out
    }

    /// The most characters `description` writes.
    public static let descriptionLimit = 4096

    private func describe(into out: inout String, budget: inout Int, depth: Int) {
        func put(_ text: String) {
            guard budget > 0 else { return }
            if text.count > budget {
                out += text.prefix(budget) + "…"
                budget = 0
            } else {
                out += text
                budget -= text.count
            }
        }
        func sequence(_ open: String, _ items: [PickleValue], _ close: String) {
            put(open)
            for (i, item) in items.enumerated() {
                guard budget > 0 else { return }
                if i > 0 { put(", ") }
                item.describe(into: &out, budget: &budget, depth: depth + 1)
            }
            put(close)
        }
        guard budget > 0 else { return }
        guard depth < 64 else { return put("…") }
        switch self {
        case .none: put("None")
        case .bool(let b): put(b ? "True" : "False")
        case .int(let i): put("\(i)")
        case .bigInt(let b): put("<int of \(b.count) bytes>")
        case .float(let d): put("\(d)")
        case .string(let s): put("'\(s.prefix(budget))'")
        case .bytes(let b): put("<bytes \(b.count)>")
        case .tuple(let t): sequence("(", t, t.count == 1 ? ",)" : ")")
        case .list(let l): sequence("[", l.items, "]")
        case .dict(let d):
            put("{")
            for (i, item) in d.items.enumerated() {
                guard budget > 0 else { return }
                if i > 0 { put(", ") }
                item.key.describe(into: &out, budget: &budget, depth: depth + 1)
                put(": ")
                item.value.describe(into: &out, budget: &budget, depth: depth + 1)
            }
            put("}")
        case .global(let m, let n): put("\(m).\(n)")
        case .object(let o):
            put("\(o.module).\(o.name)")
            sequence("(", o.arguments, ")")
            if !o.state.isNone {
                put(" state=")
                o.state.describe(into: &out, budget: &budget, depth: depth + 1)
            }
        case .storage(let s): put("<storage \(s.dtype) key=\(s.key) numel=\(s.count)>")
        case .tensor(let t): put("<tensor \(t.storage.dtype) \(t.size)>")
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

    /// Empties it (items and attributes).
    public func removeAll() {
        items = []
        stringIndex = [:]
        attributes = .none
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

    public var description: String { PickleValue.object(self).description }
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
