import CZlib
import Foundation
@testable import TensorFiles

/// Writes small zip archives in memory for the tests, honest or lying: each entry stored or deflated (raw
/// DEFLATE by zlib), with the directory's sizes and CRC overridable, and ZIP64 sizes when asked.
struct ZipBuilder {
    struct Entry {
        var name: String
        var data: [UInt8]
        var deflate = false
        /// What the directory claims, instead of the truth.
        var claimedSize: Int?
        var claimedCompressedSize: Int?
        var zip64 = false
    }

    var entries: [Entry] = []

    mutating func add(_ name: String, _ data: [UInt8], deflate: Bool = false, claimedSize: Int? = nil,
                      claimedCompressedSize: Int? = nil, zip64: Bool = false) {
        entries.append(Entry(name: name, data: data, deflate: deflate, claimedSize: claimedSize,
                             claimedCompressedSize: claimedCompressedSize, zip64: zip64))
    }

    static func deflated(_ data: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        deflateInit2_(&stream, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: data.count + data.count / 100 + 64)
        var input = data
        input.withUnsafeMutableBufferPointer { inp in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = inp.baseAddress
                stream.avail_in = uInt(inp.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                _ = deflate(&stream, Z_FINISH)
            }
        }
        return Array(output.prefix(Int(stream.total_out)))
    }

    func build() -> [UInt8] {
        var out: [UInt8] = [], directory: [UInt8] = []
        func u16(_ v: Int, _ to: inout [UInt8]) { to += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
        func u32(_ v: Int, _ to: inout [UInt8]) { for k in 0..<4 { to.append(UInt8(v >> (8 * k) & 0xff)) } }
        func u64(_ v: Int, _ to: inout [UInt8]) { for k in 0..<8 { to.append(UInt8(v >> (8 * k) & 0xff)) } }
        for entry in entries {
            let payload = entry.deflate ? Self.deflated(entry.data) : entry.data
            let crc = Int(entry.data.withUnsafeBytes { ZipArchive.crc32($0) })
            let size = entry.claimedSize ?? entry.data.count
            let compressed = entry.claimedCompressedSize ?? payload.count
            let name = Array(entry.name.utf8)
            var extra: [UInt8] = []
            if entry.zip64 {
                u16(1, &extra); u16(16, &extra); u64(size, &extra); u64(compressed, &extra)
            }
            let offset = out.count
            u32(0x0403_4b50, &out); u16(45, &out); u16(0, &out); u16(entry.deflate ? 8 : 0, &out); u32(0, &out)
            u32(crc, &out); u32(entry.zip64 ? 0xFFFF_FFFF : compressed, &out); u32(entry.zip64 ? 0xFFFF_FFFF : size, &out)
            u16(name.count, &out); u16(0, &out)
            out += name + payload
            u32(0x0201_4b50, &directory); u16(45, &directory); u16(45, &directory); u16(0, &directory)
            u16(entry.deflate ? 8 : 0, &directory); u32(0, &directory); u32(crc, &directory)
            u32(entry.zip64 ? 0xFFFF_FFFF : compressed, &directory); u32(entry.zip64 ? 0xFFFF_FFFF : size, &directory)
            u16(name.count, &directory); u16(extra.count, &directory); u16(0, &directory); u16(0, &directory)
            u16(0, &directory); u32(0, &directory); u32(offset, &directory)
            directory += name + extra
        }
        let directoryOffset = out.count
        out += directory
        u32(0x0605_4b50, &out); u16(0, &out); u16(0, &out); u16(entries.count, &out); u16(entries.count, &out)
        u32(directory.count, &out); u32(directoryOffset, &out); u16(0, &out)
        return out
    }
}

/// Runs `body` on bytes kept alive for its duration.
func withBytes<T>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer, AnyObject) throws -> T) rethrows -> T {
    let owner = OwnedBytes(count: bytes.count)
    bytes.withUnsafeBytes { owner.pointer.copyMemory(from: $0) }
    return try body(UnsafeRawBufferPointer(rebasing: owner.bytes[0..<bytes.count]), owner)
}
