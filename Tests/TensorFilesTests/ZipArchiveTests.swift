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

    @Test func aDeflatedEntryIsAClearErrorNotGarbage() throws {
        let (zip, file) = try Self.archive("deflated.zip")
        let error = #expect(throws: TensorFileError.self) { try zip.storedBytes(of: "data.txt") }
        #expect(error?.reason.contains("is compressed (method 8)") == true)
        #expect(throws: TensorFileError.self) { try zip.storedBytes(of: "missing.txt") }
        withExtendedLifetime(file) {}
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
