/// A `torch.save` file: the zip serialization (PyTorch ≥ 1.6; HF's `pytorch_model.bin`), where
/// `<root>/data.pkl` holds the pickled object and `<root>/data/<key>` each storage's raw bytes, or the
/// pre-1.6 serialization (pickles followed by the storages), as NVIDIA's older checkpoints use.
///
/// The file is memory-mapped and stored entries are read in place; nothing in the pickle is executed.
///
/// ```swift
/// let checkpoint = try TorchCheckpoint(path: "pytorch_model.bin")
/// for (name, tensor) in checkpoint.tensors { print(name, tensor.shape) }
/// ```
public struct TorchCheckpoint: @unchecked Sendable {
    public let path: String
    /// The unpickled object.
    public let root: PickleValue
    /// Every tensor in the object, by its dotted path of dict keys (a state dict's own names).
    public let tensors: [String: StoredTensor]

    /// Maps and reads a `torch.save` file (either format).
    public init(path: String) throws {
        let file = try MappedFile(path: path)
        try self.init(bytes: file.bytes, owner: file, path: path)
    }

    /// Reads a `torch.save` file already in memory (`owner` keeps `bytes` alive; tensors may point into them).
    public init(bytes: UnsafeRawBufferPointer, owner: AnyObject, path: String = "") throws {
        self.path = path
        if bytes.count >= 2, bytes[0] == 0x80 {  // a pickle, not a zip: the pre-1.6 serialization
            (root, tensors) = try Self.readLegacy(bytes, owner: owner, path: path)
            return
        }
        let zip = try ZipArchive(bytes: bytes, path: path)
        guard let pickleEntry = zip.entries.first(where: { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }) else {
            throw TensorFileError(path: path, "a zip file but not a PyTorch checkpoint: no data.pkl inside")
        }
        let prefix = String(pickleEntry.name.dropLast("data.pkl".count))
        let pickle = try zip.contents(of: pickleEntry)  // (owner keeps inflated bytes alive while parsing)

        var machine = PickleMachine(bytes: pickle.bytes, path: path)
        machine.reducer = TorchCheckpoint.reduce
        machine.persistentLoader = { id in try TorchCheckpoint.storage(from: id, path: path) }
        root = try withExtendedLifetime(pickle.owner) { try machine.load() }

        // Storages are read in place when stored (torch.save's own archives), inflated when deflated.
        var storageCache: [String: (bytes: UnsafeRawBufferPointer, owner: AnyObject)] = [:]
        var tensors: [String: StoredTensor] = [:]
        var failure: Error?
        TorchCheckpoint.forEachTensor(in: root, prefix: "") { name, ref in
            guard failure == nil else { return }
            do {
                let data: (bytes: UnsafeRawBufferPointer, owner: AnyObject)
                if let cached = storageCache[ref.storage.key] {
                    data = cached
                } else {
                    let entryName = prefix + "data/" + ref.storage.key
                    guard let entry = zip.entry(named: entryName) else {
                        throw TensorFileError(path: path, "the archive has no entry '\(entryName)' for tensor '\(name)'")
                    }
                    let contents = try zip.contents(of: entry)
                    data = (contents.bytes, contents.owner ?? owner)
                    storageCache[ref.storage.key] = data
                }
                tensors[name] = try TorchCheckpoint.materialize(ref, storageBytes: data.bytes, owner: data.owner, name: name, path: path)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        self.tensors = tensors
    }

    /// The pre-1.6 `torch.save` layout: pickles of the magic number, the protocol version (1001) and the
    /// system info, then the object, then the sorted list of storage keys; then each storage in that
    /// order as an 8-byte little-endian element count followed by its raw bytes.
    static func readLegacy(_ bytes: UnsafeRawBufferPointer, owner: AnyObject, path: String)
        throws -> (PickleValue, [String: StoredTensor]) {
        func fail(_ reason: String) -> TensorFileError { TensorFileError(path: path, "legacy torch file: \(reason)") }
        var machine = PickleMachine(bytes: bytes, path: path)
        // 0x1950a86a20f9469cfc6c, as LONG1 bytes (little-endian).
        let magic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
        guard case .bigInt(let found) = try machine.load(from: 0), found == magic else {
            throw fail("bad magic number (not a torch.save file)")
        }
        guard try machine.load(from: machine.offset).int == 1001 else { throw fail("unknown protocol version") }
        if case .dict(let info) = try machine.load(from: machine.offset), case .bool(false)? = info["little_endian"] {
            throw fail("written on a big-endian machine, which is not supported")
        }
        machine.reducer = reduce
        machine.persistentLoader = { id in try storage(from: id, path: path) }
        let root = try machine.load(from: machine.offset)
        guard let keys = try machine.load(from: machine.offset).elements?.map({ $0.string ?? $0.description }) else {
            throw fail("the storage key list is missing")
        }
        var sizes: [String: Int] = [:]  // element size of each storage, from the tensors that use it
        forEachTensor(in: root, prefix: "") { _, ref in sizes[ref.storage.key] = dtype(ofStorage: ref.storage.dtype)?.size }
        let reader = ByteReader(bytes: bytes, path: path)
        var storages: [String: UnsafeRawBufferPointer] = [:]
        var position = machine.offset
        for key in keys {
            guard let size = sizes[key] else { throw fail("storage '\(key)' is not used by any tensor, so its size is unknown") }
            let count = try reader.int64(position)
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, position + 8 <= bytes.count, byteCount <= bytes.count - position - 8 else {
                throw fail("storage '\(key)' declares \(count) elements but the file ends first (truncated?)")
            }
            storages[key] = UnsafeRawBufferPointer(rebasing: bytes[(position + 8)..<(position + 8 + byteCount)])
            position += 8 + byteCount
        }
        var tensors: [String: StoredTensor] = [:]
        var failure: Error?
        forEachTensor(in: root, prefix: "") { name, ref in
            guard failure == nil else { return }
            do {
                guard let data = storages[ref.storage.key] else { throw fail("tensor '\(name)' uses storage '\(ref.storage.key)', which the file does not hold") }
                tensors[name] = try materialize(ref, storageBytes: data, owner: owner, name: name, path: path)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return (root, tensors)
    }

    // MARK: - Torch semantics for the pickle machine

    /// The most bytes a view that repeats elements (stride 0) may grow to when it is made a tensor.
    public static let maxBroadcastBytes = 16 << 20

    /// Maps a storage class name to its element type.
    public static func dtype(ofStorage name: String) -> StorageDType? {
        switch name {
        case "DoubleStorage": .float64
        case "FloatStorage": .float32
        case "HalfStorage": .float16
        case "BFloat16Storage": .bfloat16
        case "LongStorage": .int64
        case "IntStorage": .int32
        case "ShortStorage": .int16
        case "CharStorage": .int8
        case "ByteStorage": .uint8
        case "BoolStorage": .bool
        default: nil
        }
    }

    /// The calls a checkpoint makes that we interpret as data; everything else stays an inert object.
    static func reduce(module: String, name: String, args: [PickleValue]) throws -> PickleValue? {
        switch (module, name) {
        case ("collections", "OrderedDict"):
            let d = PickleDict()
            if let pairs = args.first?.elements {
                for pair in pairs {
                    if let kv = pair.elements, kv.count == 2 { d.set(kv[0], kv[1]) }
                }
            }
            return .dict(d)
        case ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"):
            guard args.count >= 4, case .storage(let storage) = args[0], let offset = args[1].int,
                  let size = args[2].elements?.compactMap(\.int), let stride = args[3].elements?.compactMap(\.int),
                  size.count == args[2].elements?.count, stride.count == size.count
            else {
                throw TensorFileError(path: "", "pickle: malformed tensor record \(name)\(args.prefix(4))")
            }
            return .tensor(TorchTensorRef(storage: storage, offset: offset, size: size, stride: stride))
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            return args.first ?? PickleValue.none
        default:
            return nil
        }
    }

    static func storage(from id: PickleValue, path: String) throws -> PickleValue {
        guard let parts = id.elements, parts.count >= 5, parts[0].string == "storage",
              case .global(_, let className) = parts[1], let key = parts[2].string ?? parts[2].int.map(String.init),
              let count = parts[4].int
        else {
            throw TensorFileError(path: path, "pickle: unrecognised persistent id \(id)")
        }
        guard dtype(ofStorage: className) != nil else {
            throw TensorFileError(path: path, "storage '\(key)' has unsupported type \(className)")
        }
        guard count >= 0 else { throw TensorFileError(path: path, "storage '\(key)' has a negative size") }
        return .storage(TorchStorageRef(dtype: className, key: key, count: count))
    }

    /// Visits every tensor in nested dicts, lists and tuples, naming it by its dotted path. A container shared
    /// by several paths is visited once, by the first (so a pickle describing exponentially many paths costs no
    /// more than its size); the machine has already refused cycles and deep nesting.
    static func forEachTensor(in value: PickleValue, prefix: String, _ body: (String, TorchTensorRef) -> Void) {
        var seen = Set<UInt>()
        func visit(_ value: PickleValue, _ prefix: String) {
            func join(_ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }
            if let id = PickleGraph.identity(value), !seen.insert(id).inserted { return }
            switch value {
            case .tensor(let t): body(prefix, t)
            case .dict(let d):
                for (k, v) in d.items { visit(v, join(k.string ?? k.description)) }
            case .list, .tuple:
                for (i, v) in (value.elements ?? []).enumerated() { visit(v, join(String(i))) }
            default: break
            }
        }
        visit(value, prefix)
    }

    /// A contiguous tensor from a storage view: in place when the view is row-major contiguous, else copied.
    static func materialize(_ ref: TorchTensorRef, storageBytes: UnsafeRawBufferPointer, owner: AnyObject,
                            name: String, path: String) throws -> StoredTensor {
        func fail(_ reason: String) -> TensorFileError { TensorFileError(path: path, "tensor '\(name)': \(reason)") }
        guard let dtype = dtype(ofStorage: ref.storage.dtype) else { throw fail("unsupported storage \(ref.storage.dtype)") }
        let (declared, o1) = ref.storage.count.multipliedReportingOverflow(by: dtype.size)
        guard !o1, declared <= storageBytes.count else {
            throw fail("its storage declares \(ref.storage.count) elements but the file holds \(storageBytes.count / dtype.size)")
        }
        guard ref.offset >= 0, ref.size.allSatisfy({ $0 >= 0 }), ref.stride.allSatisfy({ $0 >= 0 }) else {
            throw fail("negative offset, size or stride")
        }
        var count = 1
        var extent = 1  // one past the last element touched, relative to offset
        for (n, s) in zip(ref.size, ref.stride) {
            let (c, o2) = count.multipliedReportingOverflow(by: n)
            guard !o2 else { throw fail("shape \(ref.size) is too large") }
            count = c
            if n > 0 {
                let (reach, o3) = (n - 1).multipliedReportingOverflow(by: s)
                guard !o3 else { throw fail("strides \(ref.stride) are too large") }
                extent += reach
            }
        }
        if count == 0 { extent = 0 }
        guard ref.offset <= ref.storage.count, extent <= ref.storage.count - ref.offset else {
            throw fail("the view (offset \(ref.offset), size \(ref.size), stride \(ref.stride)) reaches past its storage of \(ref.storage.count) elements")
        }
        // Row-major contiguous strides?
        var expected = 1
        var contiguous = true
        for (n, s) in zip(ref.size, ref.stride).reversed() {
            if n != 1 && s != expected { contiguous = false }
            expected *= n
        }
        let e = dtype.size
        if contiguous {
            let start = ref.offset * e
            return StoredTensor(dtype: dtype, shape: ref.size,
                                bytes: UnsafeRawBufferPointer(rebasing: storageBytes[start..<(start + count * e)]), owner: owner)
        }
        // A view reaching elements more than once (stride 0: `expand`) would be copied into more than its storage
        // holds: fine when small (HF's position_ids buffer), refused when a file could make it any size.
        let (copyBytes, o4) = count.multipliedReportingOverflow(by: e)
        guard !o4, count <= ref.storage.count || copyBytes <= Self.maxBroadcastBytes else {
            throw fail("a broadcast view (size \(ref.size), stride \(ref.stride)) of a \(ref.storage.count)-element storage would take \(o4 ? "more than \(Int.max)" : MemoryBudget.describe(copyBytes)) as a tensor; save it with .contiguous() (or .clone()) if it is meant to be one")
        }
        let copy = OwnedBytes(count: count * e)
        var index = [Int](repeating: 0, count: ref.size.count)
        for i in 0..<count {
            var source = ref.offset
            for d in 0..<index.count { source += index[d] * ref.stride[d] }
            copy.pointer.baseAddress!.advanced(by: i * e)
                .copyMemory(from: storageBytes.baseAddress!.advanced(by: source * e), byteCount: e)
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < ref.size[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return StoredTensor(dtype: dtype, shape: ref.size, bytes: copy.bytes, owner: copy)
    }
}
