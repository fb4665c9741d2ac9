import CZlib
import Foundation

/// A read-only view of a zip archive in memory (a PyTorch `.bin`/`.pt` or an NGC download):
/// the central directory, ZIP64 included, and pointers to stored entries' bytes without copying.
///
/// ```swift
/// let file = try MappedFile(path: "pytorch_model.bin")
/// let zip = try ZipArchive(bytes: file.bytes, path: file.path)
/// let pickle = try zip.storedBytes(of: "archive/data.pkl")
/// ```
public struct ZipArchive: @unchecked Sendable {
    /// One file of the archive, as its central directory describes it.
    public struct Entry: Sendable {
        public var name: String
        /// 0 = stored, 8 = deflate.
        public var method: UInt16
        public var compressedSize: Int
        public var uncompressedSize: Int
        /// Offset of the entry's data (past its local header) in the archive.
        public var dataOffset: Int
        /// The CRC-32 the directory records for the uncompressed data.
        public var crc32: UInt32
    }

    /// DEFLATE cannot expand data more than ~1032 times; a directory claiming more is a zip bomb.
    public static let maxDeflateRatio = 1032

    public let path: String
    public let entries: [Entry]
    private let bytes: UnsafeRawBufferPointer
    /// Entries by name (the first of duplicates), so lookups cost the same with 40,000 entries as with 4.
    private let index: [String: Int]

    /// Reads the central directory (ZIP64 included) of an archive in memory.
    /// - Throws: `TensorFileError` for a truncated or inconsistent directory.
    public init(bytes: UnsafeRawBufferPointer, path: String = "") throws {
        self.path = path
        self.bytes = bytes
        func fail(_ reason: String) -> TensorFileError { TensorFileError(path: path, reason) }
        let reader = ByteReader(bytes: bytes, path: path)

        // End of central directory: 22 bytes + up to 65535 bytes of comment, at the end.
        guard bytes.count >= 22 else { throw fail("not a zip archive: \(bytes.count) bytes") }
        var eocd = -1
        var p = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 65_535)
        while p >= lowest {
            if reader.u32(p) == 0x0605_4b50 { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw fail("not a zip archive (no end-of-central-directory record; truncated?)") }
        var entryCount = Int(reader.u16(eocd + 10))
        var directorySize = Int(reader.u32(eocd + 12))
        var directoryOffset = Int(reader.u32(eocd + 16))
        // ZIP64: a locator just before the EOCD points at the ZIP64 EOCD record.
        if eocd >= 20, reader.u32(eocd - 20) == 0x0706_4b50 {
            let record = try reader.int64(eocd - 20 + 8)
            guard record >= 0, record + 56 <= bytes.count, reader.u32(record) == 0x0606_4b50 else {
                throw fail("corrupt zip: bad ZIP64 end-of-central-directory record")
            }
            entryCount = try reader.int64(record + 32)
            directorySize = try reader.int64(record + 40)
            directoryOffset = try reader.int64(record + 48)
        }
        guard directoryOffset >= 0, directorySize >= 0, directoryOffset <= bytes.count,
              directorySize <= bytes.count - directoryOffset
        else { throw fail("corrupt or truncated zip: the central directory lies outside the file") }
        guard entryCount >= 0, entryCount <= directorySize / 46 + 1 else {
            throw fail("corrupt zip: \(entryCount) entries cannot fit in a \(directorySize)-byte directory")
        }

        var entries: [Entry] = []
        entries.reserveCapacity(entryCount)
        var q = directoryOffset
        let end = directoryOffset + directorySize
        for _ in 0..<entryCount {
            guard q + 46 <= end, reader.u32(q) == 0x0201_4b50 else {
                throw fail("corrupt zip: bad central directory entry at offset \(q)")
            }
            let method = reader.u16(q + 10)
            let crc = reader.u32(q + 16)
            var compressed = Int(reader.u32(q + 20))
            var uncompressed = Int(reader.u32(q + 24))
            let nameLength = Int(reader.u16(q + 28))
            let extraLength = Int(reader.u16(q + 30))
            let commentLength = Int(reader.u16(q + 32))
            var localOffset = Int(reader.u32(q + 42))
            guard q + 46 + nameLength + extraLength + commentLength <= end else {
                throw fail("corrupt zip: central directory entry at offset \(q) runs past the directory")
            }
            let name = String(decoding: bytes[(q + 46)..<(q + 46 + nameLength)], as: UTF8.self)
            // ZIP64 extra field: the 0xFFFFFFFF fields, in order, are 8-byte values.
            var x = q + 46 + nameLength
            let extraEnd = x + extraLength
            while x + 4 <= extraEnd {
                let id = reader.u16(x), size = Int(reader.u16(x + 2))
                guard x + 4 + size <= extraEnd else { break }
                if id == 0x0001 {
                    var f = x + 4
                    if uncompressed == 0xFFFF_FFFF, f + 8 <= x + 4 + size { uncompressed = try reader.int64(f); f += 8 }
                    if compressed == 0xFFFF_FFFF, f + 8 <= x + 4 + size { compressed = try reader.int64(f); f += 8 }
                    if localOffset == 0xFFFF_FFFF, f + 8 <= x + 4 + size { localOffset = try reader.int64(f); f += 8 }
                }
                x += 4 + size
            }
            guard localOffset >= 0, localOffset + 30 <= bytes.count, reader.u32(localOffset) == 0x0403_4b50 else {
                throw fail("corrupt or truncated zip: entry '\(name)' has no local header")
            }
            let dataOffset = localOffset + 30 + Int(reader.u16(localOffset + 26)) + Int(reader.u16(localOffset + 28))
            guard compressed >= 0, uncompressed >= 0, dataOffset <= bytes.count, compressed <= bytes.count - dataOffset else {
                throw fail("truncated zip: entry '\(name)' needs \(compressed) bytes past offset \(dataOffset), but the file has \(bytes.count)")
            }
            entries.append(Entry(name: name, method: method, compressedSize: compressed,
                                 uncompressedSize: uncompressed, dataOffset: dataOffset, crc32: crc))
            q += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
        var index: [String: Int] = [:]
        index.reserveCapacity(entries.count)
        for (i, entry) in entries.enumerated() where index[entry.name] == nil { index[entry.name] = i }
        self.index = index
    }

    /// The entry with this exact name.
    public func entry(named name: String) -> Entry? {
        index[name].map { entries[$0] }
    }

    /// The bytes of a stored (uncompressed) entry, pointing into the archive.
    public func storedBytes(of name: String) throws -> UnsafeRawBufferPointer {
        guard let entry = entry(named: name) else {
            throw TensorFileError(path: path, "the archive has no entry '\(name)'")
        }
        return try storedBytes(of: entry)
    }

    /// An entry's uncompressed bytes: in place for a stored entry, inflated into `owner` for a deflated one
    /// (size bounded by the directory, checked against its CRC-32).
    public func contents(of entry: Entry) throws -> (bytes: UnsafeRawBufferPointer, owner: AnyObject?) {
        switch entry.method {
        case 0:
            return (try storedBytes(of: entry), nil)
        case 8:
            guard entry.uncompressedSize <= max(entry.compressedSize, 1) * Self.maxDeflateRatio else {
                throw TensorFileError(path: path, "entry '\(entry.name)' claims \(entry.uncompressedSize) bytes from \(entry.compressedSize) compressed: more than DEFLATE can expand (a zip bomb?)")
            }
            guard entry.uncompressedSize <= MemoryBudget.bytes else {
                throw TensorFileError(path: path, "entry '\(entry.name)' would inflate to \(MemoryBudget.describe(entry.uncompressedSize)), more than the \(MemoryBudget.describe(MemoryBudget.bytes)) of memory this process may use; unzip it to disk first (a stored entry is read in place)")
            }
            let owned = OwnedBytes(count: entry.uncompressedSize)
            let target = UnsafeMutableRawBufferPointer(rebasing: owned.pointer[0..<entry.uncompressedSize])
            try Self.inflate(UnsafeRawBufferPointer(rebasing: bytes[entry.dataOffset..<(entry.dataOffset + entry.compressedSize)]),
                             into: target, name: "\(path):\(entry.name)")
            let result = UnsafeRawBufferPointer(target)
            guard Self.crc32(result) == entry.crc32 else {
                throw TensorFileError(path: path, "entry '\(entry.name)' fails its CRC-32 check: the archive is corrupt")
            }
            return (result, owned)
        default:
            throw TensorFileError(path: path, "entry '\(entry.name)' uses compression method \(entry.method); only stored (0) and deflate (8) are supported")
        }
    }

    /// Raw DEFLATE (zlib, window bits -15) from `input` into exactly `output`: an error unless the stream ends
    /// where `output` does (the directory's size), so a lying directory can neither overflow nor short-change it.
    static func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, name: String) throws {
        func fail(_ reason: String) -> TensorFileError { TensorFileError(path: name, "deflated data: \(reason)") }
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        let chunk = Int(UInt32.max / 2)  // zlib counts in 32 bits: feed and drain at most this much at a time
        // Once the output is full, one spare byte: data past the directory's size must be noticed, not dropped.
        let spare = UnsafeMutablePointer<Bytef>.allocate(capacity: 1)
        defer { spare.deallocate() }
        var consumed = 0, produced = 0
        while true {
            let inCount = min(chunk, input.count - consumed), outCount = min(chunk, output.count - produced)
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress.map { $0.advanced(by: consumed).assumingMemoryBound(to: Bytef.self) })
            stream.avail_in = uInt(inCount)
            if outCount > 0 {
                stream.next_out = output.baseAddress!.advanced(by: produced).assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(outCount)
            } else {
                stream.next_out = spare
                stream.avail_out = 1
            }
            let status = CZlib.inflate(&stream, Z_NO_FLUSH)
            let read = inCount - Int(stream.avail_in)
            let wrote = (outCount > 0 ? outCount : 1) - Int(stream.avail_out)
            if outCount == 0 && wrote > 0 { throw fail("inflates to more than the \(output.count) bytes its zip directory says") }
            consumed += read
            produced += wrote
            switch status {
            case Z_STREAM_END:
                guard produced == output.count else {
                    throw fail("inflates to \(produced) bytes, not the \(output.count) its zip directory says (corrupt archive)")
                }
                return
            case Z_OK, Z_BUF_ERROR:
                guard read > 0 || wrote > 0 else { throw fail("ends before its final block (truncated or corrupt)") }
            case Z_DATA_ERROR:
                throw fail("corrupt: \(stream.msg.map { String(cString: $0) } ?? "invalid data")")
            default:
                throw fail("zlib error \(status)")
            }
        }
    }

    /// CRC-32 as zip records it (zlib's, in pieces zlib's 32-bit lengths can take).
    static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CZlib.crc32(0, nil, 0)
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, 1 << 30)
            crc = CZlib.crc32(crc, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(n))
            offset += n
        }
        return UInt32(crc)
    }

    /// A stored entry's bytes in place (an error for a compressed one: use `contents(of:)`).
    public func storedBytes(of entry: Entry) throws -> UnsafeRawBufferPointer {
        guard entry.method == 0 else {
            throw TensorFileError(path: path, "entry '\(entry.name)' is compressed (method \(entry.method)) and cannot be read in place; use contents(of:)")
        }
        guard entry.compressedSize == entry.uncompressedSize else {
            throw TensorFileError(path: path, "corrupt zip: stored entry '\(entry.name)' has different compressed and uncompressed sizes")
        }
        return UnsafeRawBufferPointer(rebasing: bytes[entry.dataOffset..<(entry.dataOffset + entry.compressedSize)])
    }
}

/// Little-endian reads at checked offsets.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String

    func u16(_ at: Int) -> UInt16 {
        guard at >= 0, at + 2 <= bytes.count else { return 0 }
        return bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian
    }

    func u32(_ at: Int) -> UInt32 {
        guard at >= 0, at + 4 <= bytes.count else { return 0 }
        return bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian
    }

    func int64(_ at: Int) throws -> Int {
        guard at >= 0, at + 8 <= bytes.count else {
            throw TensorFileError(path: path, "truncated file: need 8 bytes at offset \(at)")
        }
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian
        guard v <= UInt64(Int.max / 2) else { throw TensorFileError(path: path, "corrupt file: offset or size \(v) is absurd") }
        return Int(v)
    }
}
