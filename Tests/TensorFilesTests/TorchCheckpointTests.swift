import Foundation
import Testing
@testable import TensorFiles

@Suite struct TorchCheckpointTests {
    /// Every tensor of views.pt (views, offsets, shared storages, dtypes) equals the contiguous copy
    /// that safetensors holds, bit for bit — in both serializations.
    @Test(arguments: ["views.pt", "views_legacy.pt", "views_deflated.pt"])
    func viewsMatchTheirContiguousCopies(file: String) throws {
        let torch = try TorchCheckpoint(path: fixture(file))
        let reference = try SafeTensorsFile(path: fixture("views.safetensors"))
        #expect(Set(torch.tensors.keys) == Set(reference.tensors.keys))
        for (name, expected) in reference.tensors {
            let actual = try #require(torch.tensors[name])
            #expect(actual.dtype == expected.dtype, "\(name)")
            #expect(actual.shape == expected.shape, "\(name)")
            #expect(Array(actual.bytes) == Array(expected.bytes), "\(name)")
        }
    }

    @Test func keepsTheRootObjectForInspection() throws {
        let torch = try TorchCheckpoint(path: fixture("views.pt"))
        guard case .dict(let root) = torch.root else {
            Issue.record("root is \(torch.root)")
            return
        }
        #expect(root.items.first?.key.string == "plain")
    }

    /// Cut anywhere — inside a pickle, a storage header or a storage's bytes — a file is a clear error.
    @Test(arguments: ["views.pt", "views_legacy.pt"])
    func truncatedCheckpointsAreErrors(file: String) throws {
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture(file))))
        for cut in 0..<whole.count {  // every byte
            let owner = OwnedBytes(count: cut)
            whole.withUnsafeBytes { owner.pointer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<cut])) }
            #expect(throws: TensorFileError.self, "cut at \(cut)") {
                try TorchCheckpoint(bytes: UnsafeRawBufferPointer(rebasing: owner.bytes[0..<cut]), owner: owner)
            }
        }
    }

    @Test func aZipWithoutAPickleIsNotACheckpoint() throws {
        // An empty zip: just the end-of-central-directory record.
        let empty: [UInt8] = [0x50, 0x4b, 0x05, 0x06] + [UInt8](repeating: 0, count: 18)
        let error = #expect(throws: TensorFileError.self) { try TorchCheckpoint(path: temporaryFile(empty)) }
        #expect(error?.reason.contains("no data.pkl") == true)
    }

    @Test func aPickleWithoutTorchsMagicNumberIsRefused() {
        let error = #expect(throws: TensorFileError.self) {
            try TorchCheckpoint(path: temporaryFile([0x80, 0x02, 0x8a, 0x0a] + [UInt8](repeating: 0, count: 10) + [0x2e]))
        }
        #expect(error?.reason.contains("bad magic number") == true, "\(String(describing: error))")
    }

    @Test func viewsReachingPastTheirStorageAreRejected() {
        let ref = TorchTensorRef(storage: TorchStorageRef(dtype: "FloatStorage", key: "0", count: 4),
                                 offset: 2, size: [3], stride: [1])
        let bytes = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeBytes { raw in
            let error = #expect(throws: TensorFileError.self) {
                try TorchCheckpoint.materialize(ref, storageBytes: raw, owner: OwnedBytes(count: 1), name: "x", path: "")
            }
            #expect(error?.reason.contains("reaches past its storage") == true)
        }
        let declared = TorchTensorRef(storage: TorchStorageRef(dtype: "FloatStorage", key: "0", count: 100),
                                      offset: 0, size: [2], stride: [1])
        bytes.withUnsafeBytes { raw in
            let error = #expect(throws: TensorFileError.self) {
                try TorchCheckpoint.materialize(declared, storageBytes: raw, owner: OwnedBytes(count: 1), name: "x", path: "")
            }
            #expect(error?.reason.contains("declares 100 elements") == true)
        }
    }
}
