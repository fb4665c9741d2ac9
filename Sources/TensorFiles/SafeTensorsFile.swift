import Foundation

/// A `.safetensors` file, memory-mapped: an 8-byte little-endian header length, a JSON header that
/// names each tensor's dtype, shape and byte range, then the data.
///
/// Every header entry is checked against the file before any tensor is handed out, so a truncated
/// file or a header that lies about offsets or sizes is an error, never a read past the end.
///
/// ```swift
/// let file = try SafeTensorsFile(path: "model.safetensors")
/// for (name, tensor) in file.tensors { print(name, tensor.dtype, tensor.shape) }
/// ```
public struct SafeTensorsFile: Sendable {
    /// The largest JSON header we accept (the format's own reference limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let tensors: [String: StoredTensor]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]

    /// Maps a .safetensors file and reads its header; tensors point into the mapping.
    public init(path: String) throws {
        let file = try MappedFile(path: path)
        try self.init(bytes: file.bytes, owner: file, path: path)
    }

    /// Parses safetensors bytes that `owner` keeps alive.
    public init(bytes: UnsafeRawBufferPointer, owner: AnyObject, path: String = "") throws {
        self.path = path
        func fail(_ reason: String) -> TensorFileError { TensorFileError(path: path, reason) }
        guard bytes.count >= 8 else {
            throw fail("not a safetensors file: \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw fail("not a safetensors file: header length \(headerLength) exceeds \(Self.maxHeaderBytes) bytes")
        }
        guard Int(headerLength) <= bytes.count - 8 else {
            throw fail("truncated: the header says \(headerLength) bytes but only \(bytes.count - 8) follow")
        }
        let headerData = Data(bytes[8..<(8 + Int(headerLength))])
        let header: [String: JSONValue]
        do {
            guard let object = try JSONValue.parse(headerData).object else {
                throw fail("the header is not a JSON object")
            }
            header = object
        } catch let error as TensorFileError {
            throw error
        } catch {
            throw fail("the header is not valid JSON (is this a safetensors file?): \(error)")
        }
        let dataStart = 8 + Int(headerLength)
        let dataCount = bytes.count - dataStart
        var tensors: [String: StoredTensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                for (k, v) in value.object ?? [:] { metadata[k] = v.string ?? "\(v)" }
                continue
            }
            guard let dtypeName = value["dtype"]?.string, let shapeValues = value["shape"]?.array,
                  let offsetValues = value["data_offsets"]?.array, offsetValues.count == 2
            else {
                throw fail("tensor '\(name)': header entry needs dtype, shape and data_offsets [begin, end]")
            }
            guard let dtype = StorageDType(rawValue: dtypeName) else {
                throw fail("tensor '\(name)': unsupported dtype \(dtypeName)")
            }
            var shape: [Int] = []
            for v in shapeValues {
                guard let n = v.int, n >= 0 else {
                    throw fail("tensor '\(name)': shape has a value that is not a non-negative integer")
                }
                shape.append(n)
            }
            guard let begin = offsetValues[0].int, let end = offsetValues[1].int, begin >= 0, end >= begin else {
                throw fail("tensor '\(name)': data_offsets are not two ordered non-negative integers")
            }
            guard end <= dataCount else {
                throw fail("tensor '\(name)': data_offsets end at \(end) but the data section holds \(dataCount) bytes (truncated file?)")
            }
            var byteCount = dtype.size
            for n in shape {
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: n)
                guard !overflow else { throw fail("tensor '\(name)': shape \(shape) is too large") }
                byteCount = product
            }
            guard byteCount == end - begin else {
                throw fail("tensor '\(name)': shape \(shape) of \(dtypeName) needs \(byteCount) bytes but data_offsets give \(end - begin)")
            }
            let slice = UnsafeRawBufferPointer(rebasing: bytes[(dataStart + begin)..<(dataStart + end)])
            tensors[name] = StoredTensor(dtype: dtype, shape: shape, bytes: slice, owner: owner)
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Writes tensors to a safetensors file, streaming each tensor's bytes (no whole-file copy in memory).
    /// Tensors are written in name order, data 8-byte aligned, as the format's writers do.
    ///
    /// ```swift
    /// try SafeTensorsFile.write(["x": tensor], to: "out.safetensors", metadata: ["format": "pt"])
    /// ```
    public static func write(_ tensors: [String: StoredTensor], to path: String, metadata: [String: String] = [:]) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let sorted = tensors.sorted { $0.key < $1.key }
        for (name, t) in sorted {
            header[name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]] as [String: Any]
            offset += t.bytes.count
        }
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while (json.count + 8) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw TensorFileError(path: path, "cannot create the file")
        }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: withUnsafeBytes(of: UInt64(json.count).littleEndian) { Data($0) })
            try handle.write(contentsOf: Data(json))
            for (_, t) in sorted {
                guard let base = t.bytes.baseAddress, t.bytes.count > 0 else { continue }
                try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: t.bytes.count, deallocator: .none))
            }
        } catch {
            throw TensorFileError(path: path, "write failed: \(error)")
        }
    }

    /// Serialises tensors to safetensors bytes (names sorted, data 8-byte aligned, as the format's writers do).
    ///
    /// ```swift
    /// let bytes = try SafeTensorsFile.serialize([(name: "x", dtype: .float32, shape: [1], data: [0, 0, 128, 63])])
    /// ```
    public static func serialize(_ tensors: [(name: String, dtype: StorageDType, shape: [Int], data: [UInt8])],
                                 metadata: [String: String] = [:]) throws -> [UInt8] {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for t in tensors.sorted(by: { $0.name < $1.name }) {
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.data.count]] as [String: Any]
            offset += t.data.count
        }
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while (json.count + 8) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for t in tensors.sorted(by: { $0.name < $1.name }) { out.append(contentsOf: t.data) }
        return out
    }
}
