import Foundation
import Testing
@testable import TensorFiles

/// Pickle opcodes, for writing hostile pickles by hand.
enum Pickle {
    static let start: [UInt8] = [0x80, 0x02]
    static let stop: [UInt8] = [0x2e]
    static let mark: [UInt8] = [0x28]
    static let tuple: [UInt8] = [0x74]
    static let emptyList: [UInt8] = [0x5d]
    static let emptyDict: [UInt8] = [0x7d]
    static let append: [UInt8] = [0x61]
    static let appends: [UInt8] = [0x65]
    static let setItem: [UInt8] = [0x73]
    static let memoize: [UInt8] = [0x94]
    static let pop: [UInt8] = [0x30]
    static let reduce: [UInt8] = [0x52]
    static let persistentID: [UInt8] = [0x51]
    static let none: [UInt8] = [0x4e]
    static let no: [UInt8] = [0x89]
    static func get(_ k: Int) -> [UInt8] { [0x6a] + le32(k) }
    static func int(_ v: Int) -> [UInt8] { [0x4a] + le32(v) }
    static func string(_ s: String) -> [UInt8] { [0x58] + le32(s.utf8.count) + Array(s.utf8) }
    static func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
    static func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// `{"model": value}`.
    static func model(_ value: [UInt8]) -> [UInt8] { start + emptyDict + string("model") + value + setItem + stop }

    /// A torch.save zip archive around `pickle`, with optional storages.
    static func archive(_ pickle: [UInt8], storages: [String: [UInt8]] = [:]) -> [UInt8] {
        var zip = ZipBuilder()
        zip.add("archive/data.pkl", pickle)
        for (key, data) in storages.sorted(by: { $0.key < $1.key }) { zip.add("archive/data/\(key)", data) }
        return zip.build()
    }

    /// `torch._utils._rebuild_tensor_v2(storage "0" of `count` floats, 0, size, stride, False, OrderedDict())`.
    static func tensor(count: Int, size: [Int], stride: [Int]) -> [UInt8] {
        global("torch._utils", "_rebuild_tensor_v2") + mark
            + mark + string("storage") + global("torch", "FloatStorage") + string("0") + string("cpu") + int(count) + tuple + persistentID
            + int(0) + mark + size.flatMap(int) + tuple + mark + stride.flatMap(int) + tuple + no
            + global("collections", "OrderedDict") + [0x29] + reduce
            + tuple + reduce
    }
}

/// Hostile files for the readers (issue 14): each must fail with a clear error, quickly, in bounded memory, or
/// load correctly; never crash or hang.
@Suite struct HostileInputTests {
    static func checkpoint(_ bytes: [UInt8]) throws -> TorchCheckpoint {
        try withBytes(bytes) { raw, owner in try TorchCheckpoint(bytes: raw, owner: owner, path: "hostile.pt") }
    }

    static func expectError(_ bytes: [UInt8], _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) { try Self.checkpoint(bytes) } throws: { error in
            "\(error)".contains(words)
        }
    }

    /// The 258-byte case: a list that holds itself, in a torch zip.
    @Test func aListThatHoldsItself() {
        let pickle: [UInt8] = Array("\u{80}\u{02}}X\u{05}\u{00}\u{00}\u{00}model]\u{94}h\u{00}as.".unicodeScalars.map { UInt8($0.value) })
        Self.expectError(Pickle.archive(pickle), "holds itself")
        // Through a dict and an object's state too.
        let viaObject = Pickle.start + Pickle.emptyDict + Pickle.memoize + Pickle.string("model")
            + Pickle.global("argparse", "Namespace") + [0x29, 0x81] + Pickle.get(0) + [0x62] + Pickle.setItem + Pickle.stop
        Self.expectError(Pickle.archive(viaObject), "holds itself")
    }

    /// Lists nested 30,000 and 900,000 deep (pushed, then appended into each other): refused, and freed without
    /// recursing.
    @Test(arguments: [30_000, 900_000])
    func deeplyNestedLists(depth: Int) {
        let nested = [UInt8](repeating: Pickle.emptyList[0], count: depth) + [UInt8](repeating: Pickle.append[0], count: depth - 1)
        Self.expectError(Pickle.archive(Pickle.model(nested)), "nest more than 100 deep")
    }

    /// A 200,000-long chain built through the memo (each list appended into the one before, then dropped from
    /// the stack): the chain lives only in the memo when the error comes, and is freed without recursing.
    @Test func aDeepChainKeptInTheMemo() {
        let n = 200_000
        var body = [UInt8]()
        for _ in 0..<n { body += Pickle.emptyList + Pickle.memoize + Pickle.pop }
        for i in 0..<(n - 1) { body += Pickle.get(i) + Pickle.get(i + 1) + Pickle.append + Pickle.pop }
        Self.expectError(Pickle.archive(Pickle.model(body + Pickle.get(0))), "nest more than 100 deep")
    }

    @Test func deeplyNestedTuples() {
        let tuples = Pickle.none + [UInt8](repeating: 0x85, count: 500_000)  // TUPLE1 around TUPLE1 …
        Self.expectError(Pickle.archive(Pickle.model(tuples)), "tuples nested more than 100 deep")
    }

    /// "Billion laughs": 40 levels of lists, each holding the one below twice (2^40 paths in 600 bytes), with a
    /// tensor at the bottom. Loads at once: each shared list is walked once, and its description is cut short.
    @Test func exponentiallyManyPathsAreWalkedOnce() throws {
        var body = Pickle.emptyList + Pickle.memoize + Pickle.pop  // memo 0: the bottom list
        body += Pickle.get(0) + Pickle.tensor(count: 4, size: [4], stride: [1]) + Pickle.append + Pickle.pop
        for level in 1...40 {
            body += Pickle.emptyList + Pickle.mark + Pickle.get(level - 1) + Pickle.get(level - 1) + Pickle.appends + Pickle.memoize + Pickle.pop
        }
        let bytes = Pickle.archive(Pickle.model(body + Pickle.get(40)), storages: ["0": [UInt8](repeating: 0, count: 16)])
        let started = Date()
        let checkpoint = try Self.checkpoint(bytes)
        #expect(checkpoint.tensors.count == 1)
        #expect(checkpoint.root.description.count <= PickleValue.descriptionLimit + 1)
        #expect(Date().timeIntervalSince(started) < 10)
    }

    /// `torch.ones(1).expand(N, N)`: stride 0 would make 4 bytes into N² floats.
    @Test func broadcastViewsAreBounded() throws {
        let huge = Pickle.archive(Pickle.model(Pickle.tensor(count: 1, size: [100_000, 100_000], stride: [0, 0])),
                                  storages: ["0": [0, 0, 0x80, 0x3f]])
        Self.expectError(huge, "a broadcast view")
        // HF BERT's position_ids buffer is such a view, and small: it loads.
        let small = Pickle.archive(Pickle.model(Pickle.tensor(count: 512, size: [2, 512], stride: [0, 1])),
                                   storages: ["0": [UInt8](repeating: 0, count: 2048)])
        let checkpoint = try Self.checkpoint(small)
        #expect(checkpoint.tensors["model"]?.shape == [2, 512])
    }

    /// Deflated entries whose directory lies about the size, in both directions, and a ZIP64 claim beyond memory.
    @Test func zipEntriesThatLieAboutTheirSize() throws {
        let data = [UInt8]((0..<5000).map { UInt8($0 % 251) })
        for (claim, words) in [(4000, "more than the 4000 bytes"), (6000, "not the 6000")] {
            var zip = ZipBuilder()
            zip.add("x.bin", data, deflate: true, claimedSize: claim)
            try withBytes(zip.build()) { raw, _ in
                let archive = try ZipArchive(bytes: raw)
                #expect { try archive.contents(of: archive.entries[0]) } throws: { "\($0)".contains(words) }
            }
        }
        // Claiming more than this machine's memory (within DEFLATE's ratio): refused before allocating.
        let compressed = MemoryBudget.bytes / 1000 + 1
        var zip = ZipBuilder()
        zip.add("big.bin", [UInt8](repeating: 0, count: compressed), claimedSize: compressed * 1000, zip64: true)
        var bytes = zip.build()
        bytes[8] = 8  // method: deflate (in the local header) …
        let central = bytes.count - 22 - (46 + 7 + 20)
        bytes[central + 10] = 8  // … and in the directory
        try withBytes(bytes) { raw, _ in
            let archive = try ZipArchive(bytes: raw)
            #expect(archive.entries[0].uncompressedSize == compressed * 1000)
            #expect { try archive.contents(of: archive.entries[0]) } throws: { "\($0)".contains("of memory this process may use") }
        }
    }

    @Test func aTruncatedDeflateStreamIsAnError() throws {
        var zip = ZipBuilder()
        let data = [UInt8]((0..<5000).map { UInt8($0 % 7) })
        zip.add("x.bin", data, deflate: true)
        var bytes = zip.build()
        let compressed = ZipBuilder.deflated(data).count
        // Cut the stream short but keep the directory consistent with the shorter data: claim fewer compressed bytes.
        zip = ZipBuilder()
        zip.add("x.bin", data, deflate: true, claimedCompressedSize: compressed / 2)
        bytes = zip.build()
        try withBytes(bytes) { raw, _ in
            let archive = try ZipArchive(bytes: raw)
            #expect(throws: TensorFileError.self) { try archive.contents(of: archive.entries[0]) }
        }
    }

    /// 40,000 entries: every lookup by name is direct (a torch archive looks up one entry per tensor).
    @Test func manyEntriesAreIndexed() throws {
        var zip = ZipBuilder()
        for i in 0..<40_000 { zip.add("archive/data/\(i)", [UInt8(i & 0xff)]) }
        try withBytes(zip.build()) { raw, _ in
            let archive = try ZipArchive(bytes: raw)
            #expect(archive.entries.count == 40_000)
            for i in stride(from: 0, to: 40_000, by: 997) {
                #expect(Array(try archive.storedBytes(of: "archive/data/\(i)")) == [UInt8(i & 0xff)])
            }
        }
    }
}
