import Foundation
import Testing
@testable import TensorFiles

@Suite struct ZipArchiveTests {
    static func archive(_ name: String) throws -> (ZipArchive, MappedFile) {
        let file = try MappedFile(path: fixture(name))
        return (try ZipArchive(bytes: file.bytes, path: file.path), file)
    }

    @Test func readsZIP64RecordsAndStoredEntriesInPlace() throws {
        let (zip, file) = try Self.archive("zip64.zip")
        #expect(zip.entries.map(\.name) == ["dir/hello.txt", "second.bin"])
        #expect(String(decoding: try zip.storedBytes(of: "dir/hello.txt"), as: UTF8.self) == "hello, zip64")
        #expect(Array(try zip.storedBytes(of: "second.bin")) == Array(0..<16))
        withExtendedLifetime(file) {}
    }

    @Test func aDeflatedEntryCannotBeReadInPlace() throws {
        let (zip, file) = try Self.archive("deflated.zip")
        let error = #expect(throws: TensorFileError.self) { try zip.storedBytes(of: "data.txt") }
        #expect(error?.reason.contains("is compressed (method 8)") == true)
        #expect(throws: TensorFileError.self) { try zip.storedBytes(of: "missing.txt") }
        withExtendedLifetime(file) {}
    }

    /// Fixed-Huffman, dynamic-Huffman and stored blocks inflate to the bytes Python stored (and CRC-32 agrees).
    @Test func inflatesEveryBlockType() throws {
        let (zip, file) = try Self.archive("deflated.zip")
        let (plain, plainFile) = try Self.archive("deflated-stored.zip")
        for name in ["data.txt", "text.txt"] {
            let inflated = try zip.contents(of: try #require(zip.entry(named: name)))
            #expect(Array(inflated.bytes) == Array(try plain.storedBytes(of: name)), "\(name)")
        }
        let random = try zip.contents(of: try #require(zip.entry(named: "random.bin")))
        #expect(random.bytes.count == 5000)
        #expect(try zip.contents(of: try #require(zip.entry(named: "empty.txt"))).bytes.isEmpty)
        withExtendedLifetime((file, plainFile)) {}
    }

    /// Corrupted compressed bytes or a lying size are errors (never a crash, never more memory than declared).
    @Test func corruptDeflateDataIsAnError() throws {
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("deflated.zip"))))
        let zip = try whole.withUnsafeBytes { try ZipArchive(bytes: $0) }
        let entry = try #require(zip.entry(named: "text.txt"))
        var failures = 0
        for k in stride(from: 0, to: entry.compressedSize, by: 7) {
            var damaged = whole
            damaged[entry.dataOffset + k] ^= 0x5a
            damaged.withUnsafeBytes { raw in
                do {
                    _ = try ZipArchive(bytes: raw).contents(of: entry)
                } catch {
                    failures += 1
                }
            }
        }
        #expect(failures == (entry.compressedSize + 6) / 7)  // the CRC catches what decoding does not
        var bomb = entry
        bomb.uncompressedSize = entry.compressedSize * 2000
        let error = #expect(throws: TensorFileError.self) { try whole.withUnsafeBytes { try ZipArchive(bytes: $0).contents(of: bomb) } }
        #expect(error?.reason.contains("zip bomb") == true)
        var short = entry
        short.uncompressedSize = 10
        #expect(throws: TensorFileError.self) { try whole.withUnsafeBytes { try ZipArchive(bytes: $0).contents(of: short) } }
    }

    @Test func truncatedOrCorruptArchivesAreErrors() throws {
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("zip64.zip"))))
        for cut in 0..<whole.count {
            whole.withUnsafeBytes { raw in
                let prefix = UnsafeRawBufferPointer(rebasing: raw[0..<cut])
                // Either an error, or (cut inside trailing data) a directory whose entries all lie inside the prefix.
                if let zip = try? ZipArchive(bytes: prefix) {
                    for entry in zip.entries { #expect(entry.dataOffset + entry.compressedSize <= cut) }
                }
            }
        }
        // A directory that claims more entries than fit.
        var lying = whole
        let eocd = lying.count - 22
        lying[eocd + 10] = 0xff
        lying[eocd + 11] = 0xff
        lying.withUnsafeBytes { raw in
            #expect(throws: TensorFileError.self) { try ZipArchive(bytes: raw) }
        }
    }
}
