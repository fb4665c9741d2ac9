/// A pickle reader for protocols 2–5 with the opcodes PyTorch and NumPy emit. It builds
/// `PickleValue`s and never executes anything: a GLOBAL is a name, a REDUCE on a name the caller does
/// not interpret becomes an inert `.object`.
///
/// ```swift
/// var machine = PickleMachine(bytes: pickleBytes)
/// let value = try machine.load()
/// ```
public struct PickleMachine {
    /// Interprets calls of known globals (e.g. `collections.OrderedDict`); return nil to keep the call as data.
    public typealias Reducer = (_ module: String, _ name: String, _ arguments: [PickleValue]) throws -> PickleValue?
    /// Turns a persistent id (PyTorch's storage tuples) into a value.
    public typealias PersistentLoader = (_ id: PickleValue) throws -> PickleValue

    /// Bounds that keep a hostile pickle from exhausting memory.
    public static let maxStackDepth = 1_000_000
    public static let maxMemoEntries = 10_000_000
    /// How deeply containers may nest (checkpoints nest a handful of levels; a pickle nesting deeper, or
    /// holding itself, is refused, so every walk over what `load` returns is bounded).
    public static let maxNestingDepth = 100

    /// A value on the stack or in the memo, with how deeply tuples nest inside it (tuples are immutable, so
    /// that is known when one is made; the other containers can be emptied, which `PickleGraph.dismantle` does).
    typealias Entry = (value: PickleValue, tupleDepth: Int)

    private let bytes: UnsafeRawBufferPointer
    private let path: String
    private var position = 0
    private var stack: [Entry] = []
    private var marks: [Int] = []
    private var memo: [Int: Entry] = [:]
    public var reducer: Reducer = { _, _, _ in nil }
    public var persistentLoader: PersistentLoader = { id in
        throw TensorFileError(path: "", "the pickle references external data (persistent id \(id)) but no loader was given")
    }

    /// `bytes` must outlive the machine.
    public init(bytes: UnsafeRawBufferPointer, path: String = "") {
        self.bytes = bytes
        self.path = path
    }

    /// Bytes consumed so far (where the next pickle in the same stream begins).
    public var offset: Int { position }

    /// Reads from `start` up to and including the STOP opcode and returns the top of the stack.
    ///
    /// What it returns is checked before it is handed out: no container holds itself and none nests deeper than
    /// `maxNestingDepth`. On any error everything built so far is taken apart without recursion, so even a
    /// million-deep hostile structure is freed safely.
    public mutating func load(from start: Int = 0) throws -> PickleValue {
        position = start
        stack = []
        marks = []
        memo = [:]
        var result: PickleValue?
        do {
            let value = try run()
            result = value
            try PickleGraph.check(roots: [value] + stack.map(\.value) + memo.values.map(\.value),
                                  maxDepth: Self.maxNestingDepth, path: path)
            stack = []
            memo = [:]
            return value
        } catch {
            PickleGraph.dismantle((result.map { [$0] } ?? []) + stack.map(\.value) + memo.values.map(\.value))
            result = nil
            stack = []
            memo = [:]
            throw error
        }
    }

    private mutating func run() throws -> PickleValue {
        while true {
            let opcodeOffset = position
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()  // PROTO
            case 0x95: _ = try take(8)  // FRAME: frames are just a hint
            case 0x2e:  // STOP
                return try pop()
            case 0x28: marks.append(stack.count)  // MARK
            case 0x4e: try push(.none)  // NONE
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case 0x4b: try push(.int(Int(try byte())))  // BININT1
            case 0x4d: try push(.int(Int(try uint(2))))  // BININT2
            case 0x4a: try push(.int(Int(Int32(bitPattern: UInt32(try uint(4))))))  // BININT
            case 0x8a: try push(try long(count: Int(try byte())))  // LONG1
            case 0x8b:  // LONG4
                let n = try uint(4)
                try push(try long(count: Int(n)))
            case 0x47:  // BINFLOAT (big-endian)
                let raw = try take(8)
                var bits: UInt64 = 0
                for b in raw { bits = bits << 8 | UInt64(b) }
                try push(.float(Double(bitPattern: bits)))
            case 0x58: try push(.string(try text(count: Int(try uint(4)))))  // BINUNICODE
            case 0x8c: try push(.string(try text(count: Int(try byte()))))  // SHORT_BINUNICODE
            case 0x8d: try push(.string(try text(count: try size(8))))  // BINUNICODE8
            case 0x54: try push(.string(try text(count: Int(try uint(4)))))  // BINSTRING
            case 0x55: try push(.string(try text(count: Int(try byte()))))  // SHORT_BINSTRING
            case 0x42: try push(.bytes(Array(try take(Int(try uint(4))))))  // BINBYTES
            case 0x43: try push(.bytes(Array(try take(Int(try byte())))))  // SHORT_BINBYTES
            case 0x8e, 0x96: try push(.bytes(Array(try take(try size(8)))))  // BINBYTES8, BYTEARRAY8
            case 0x29: try push(.tuple([]))  // EMPTY_TUPLE
            case 0x85: let a = try popEntry(); try pushTuple([a], at: opcodeOffset)  // TUPLE1
            case 0x86: let b = try popEntry(), a = try popEntry(); try pushTuple([a, b], at: opcodeOffset)  // TUPLE2
            case 0x87:  // TUPLE3
                let c = try popEntry(), b = try popEntry(), a = try popEntry()
                try pushTuple([a, b, c], at: opcodeOffset)
            case 0x74: try pushTuple(try popEntriesToMark(), at: opcodeOffset)  // TUPLE
            case 0x5d: try push(.list(PickleList()))  // EMPTY_LIST
            case 0x6c: try push(.list(PickleList(try popToMark())))  // LIST
            case 0x7d: try push(.dict(PickleDict()))  // EMPTY_DICT
            case 0x8f: try push(.list(PickleList()))  // EMPTY_SET (kept as a list)
            case 0x64:  // DICT
                let items = try popToMark()
                let d = PickleDict()
                try setItems(d, items)
                try push(.dict(d))
            case 0x61:  // APPEND
                let v = try pop()
                try append(to: try top(), [v])
            case 0x65, 0x90:  // APPENDS, ADDITEMS
                let items = try popToMark()
                try append(to: try top(), items)
            case 0x91:  // FROZENSET
                try push(.list(PickleList(try popToMark())))
            case 0x73:  // SETITEM
                let v = try pop(), k = try pop()
                try setItems(in: try top(), [k, v])
            case 0x75:  // SETITEMS
                let items = try popToMark()
                try setItems(in: try top(), items)
            case 0x71: try memoize(Int(try byte()), at: opcodeOffset)  // BINPUT
            case 0x72: try memoize(Int(try uint(4)), at: opcodeOffset)  // LONG_BINPUT
            case 0x94: try memoize(memo.count, at: opcodeOffset)  // MEMOIZE
            case 0x68: try push(try recall(Int(try byte()), at: opcodeOffset))  // BINGET
            case 0x6a: try push(try recall(Int(try uint(4)), at: opcodeOffset))  // LONG_BINGET
            case 0x63:  // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                try push(.global(module: module, name: name))
            case 0x93:  // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard let m = module.string, let n = name.string else {
                    throw fail("STACK_GLOBAL needs two strings", at: opcodeOffset)
                }
                try push(.global(module: m, name: n))
            case 0x52, 0x81:  // REDUCE, NEWOBJ
                let args = try popEntry(), callable = try pop()
                try push(try call(callable, args, at: opcodeOffset))
            case 0x92:  // NEWOBJ_EX
                _ = try pop()
                let args = try popEntry(), cls = try pop()
                try push(try call(cls, args, at: opcodeOffset))
            case 0x62:  // BUILD
                let state = try pop()
                switch try top() {
                case .object(let o): o.state = state
                case .dict(let d): d.attributes = state
                default: break  // state on a value we interpreted (a tensor's hooks): ignored
                }
            case 0x51:  // BINPERSID
                let id = try pop()
                try push(try persistentLoader(id))
            case 0x50:  // PERSID (protocol 0): the id is a line of text
                try push(try persistentLoader(.string(try line())))
            case 0x30: _ = try pop()  // POP
            case 0x31: _ = try popToMark()  // POP_MARK
            case 0x32: try push(try topEntry())  // DUP
            case 0x97, 0x98: break  // NEXT_BUFFER / READONLY_BUFFER: out-of-band buffers are not supported
            default:
                throw fail("unsupported pickle opcode 0x" + String(op, radix: 16), at: opcodeOffset)
            }
        }
    }

    // MARK: - Helpers

    private func fail(_ reason: String, at offset: Int) -> TensorFileError {
        TensorFileError(path: path, "pickle: \(reason) (at byte \(offset))")
    }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw fail("truncated: ran out of bytes before STOP", at: position) }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer.SubSequence {
        guard count >= 0, count <= bytes.count - position else {
            throw fail("truncated: needs \(count) more bytes, \(bytes.count - position) left", at: position)
        }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    private mutating func uint(_ count: Int) throws -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(count).enumerated() { v |= UInt64(b) << (8 * i) }
        return v
    }

    private mutating func size(_ count: Int) throws -> Int {
        let v = try uint(count)
        guard v <= UInt64(bytes.count) else { throw fail("length \(v) exceeds the data", at: position) }
        return Int(v)
    }

    private mutating func text(count: Int) throws -> String {
        String(decoding: try take(count), as: UTF8.self)
    }

    private mutating func line() throws -> String {
        var end = position
        while end < bytes.count, bytes[end] != 0x0a { end += 1 }
        guard end < bytes.count else { throw fail("truncated: unterminated line", at: position) }
        let s = String(decoding: bytes[position..<end], as: UTF8.self)
        position = end + 1
        return s
    }

    private mutating func long(count: Int) throws -> PickleValue {
        let raw = Array(try take(count))
        if raw.isEmpty { return .int(0) }
        if raw.count > 8 { return .bigInt(raw) }
        var v: UInt64 = 0
        for (i, b) in raw.enumerated() { v |= UInt64(b) << (8 * i) }
        if raw.count < 8, raw[raw.count - 1] & 0x80 != 0 { v |= ~0 << (8 * raw.count) }  // sign-extend
        return .int(Int(Int64(bitPattern: v)))
    }

    private mutating func push(_ v: PickleValue) throws {
        try push((v, 0))
    }

    private mutating func push(_ entry: Entry) throws {
        guard stack.count < Self.maxStackDepth else { throw fail("stack too deep", at: position) }
        stack.append(entry)
    }

    /// A tuple of `items`, refused when tuples would nest deeper than `maxNestingDepth`.
    private mutating func pushTuple(_ items: [Entry], at offset: Int) throws {
        let depth = 1 + (items.map(\.tupleDepth).max() ?? 0)
        guard depth <= Self.maxNestingDepth else {
            throw fail("tuples nested more than \(Self.maxNestingDepth) deep; checkpoints never nest so deeply", at: offset)
        }
        try push((.tuple(items.map(\.value)), depth))
    }

    private mutating func pop() throws -> PickleValue { try popEntry().value }

    private mutating func popEntry() throws -> Entry {
        guard let v = stack.popLast() else { throw fail("stack underflow", at: position) }
        if let m = marks.last, m > stack.count { throw fail("stack underflow past a MARK", at: position) }
        return v
    }

    private func top() throws -> PickleValue { try topEntry().value }

    private func topEntry() throws -> Entry {
        guard let v = stack.last else { throw fail("stack underflow", at: position) }
        return v
    }

    private mutating func popToMark() throws -> [PickleValue] { try popEntriesToMark().map(\.value) }

    private mutating func popEntriesToMark() throws -> [Entry] {
        guard let m = marks.popLast(), m <= stack.count else { throw fail("no MARK on the stack", at: position) }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func memoize(_ key: Int, at offset: Int) throws {
        guard memo.count < Self.maxMemoEntries || memo[key] != nil else { throw fail("memo too large", at: offset) }
        memo[key] = try topEntry()
    }

    private func recall(_ key: Int, at offset: Int) throws -> Entry {
        guard let v = memo[key] else { throw fail("memo key \(key) was never stored", at: offset) }
        return v
    }

    private func append(to target: PickleValue, _ items: [PickleValue]) throws {
        switch target {
        case .list(let l): l.items.append(contentsOf: items)
        case .object(let o): o.listItems.append(contentsOf: items)
        default: throw fail("APPEND to something that is not a list", at: position)
        }
    }

    private func setItems(in target: PickleValue, _ items: [PickleValue]) throws {
        switch target {
        case .dict(let d): try setItems(d, items)
        case .object(let o):
            guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items", at: position) }
            for i in stride(from: 0, to: items.count, by: 2) { o.dictItems.append((items[i], items[i + 1])) }
        default: throw fail("SETITEM on something that is not a dict", at: position)
        }
    }

    private func setItems(_ d: PickleDict, _ items: [PickleValue]) throws {
        guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items", at: position) }
        for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
    }

    /// A call of a global as data: what the reducer makes of it (no deeper in tuples than its arguments), or an
    /// inert object.
    private func call(_ callable: PickleValue, _ args: Entry, at offset: Int) throws -> Entry {
        guard case .global(let module, let name) = callable else {
            throw fail("REDUCE on something that is not a global (\(String(callable.description.prefix(80))))", at: offset)
        }
        let arguments = args.value.elements ?? [args.value]
        if let value = try reducer(module, name, arguments) { return (value, args.tupleDepth) }
        return (.object(PickleObject(module: module, name: name, arguments: arguments)), 0)
    }
}
