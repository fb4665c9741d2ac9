import Foundation
import Testing
@testable import TensorFiles
import TestSupport

/// Writes bytes to a fresh temporary file and returns its path.
func temporaryFile(_ bytes: [UInt8], name: String = "file") -> String {
    let dir = URL(fileURLWithPath: Scratch.path("tensorfiles"))
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

/// A safetensors file with a hand-written header followed by `data`.
func safetensors(header: String, data: [UInt8]) -> [UInt8] {
    var out = [UInt8]()
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
    return out + Array(header.utf8) + data
}

func fixture(_ name: String) -> String {
    Bundle.module.path(forResource: "Fixtures/" + name, ofType: nil)!
}

@Suite struct SafeTensorsFileTests {
    @Test func roundTripsThroughSerialize() throws {
        let one = Float(1.5).bitPattern, two = Float(-2).bitPattern
        let data = [one, two].withUnsafeBytes { Array($0) }
        let bytes = try SafeTensorsFile.serialize([(name: "w", dtype: .float32, shape: [2], data: data),
                                                   (name: "b", dtype: .uint8, shape: [1, 1], data: [9])],
                                                  metadata: ["format": "pt"])
        let file = try SafeTensorsFile(path: temporaryFile(bytes))
        #expect(file.tensors["w"]?.shape == [2])
        #expect(file.tensors["w"]?.toDoubles() == [1.5, -2])
        #expect(file.tensors["b"]?.toDoubles() == [9])
        #expect(file.metadata == ["format": "pt"])
    }

    @Test func writeStreamsTensorsThatReadBackTheSame() throws {
        let source = try SafeTensorsFile(path: fixture("views.safetensors"))
        let path = temporaryFile([], name: "out.safetensors")
        try SafeTensorsFile.write(source.tensors, to: path, metadata: ["format": "pt"])
        let back = try SafeTensorsFile(path: path)
        #expect(back.metadata == ["format": "pt"])
        #expect(Set(back.tensors.keys) == Set(source.tensors.keys))
        for (name, t) in source.tensors {
            #expect(back.tensors[name]?.shape == t.shape && back.tensors[name]?.dtype == t.dtype)
            #expect(back.tensors[name].map { Array($0.bytes) } == Array(t.bytes), "\(name)")
        }
    }

    @Test func readsTheFixtureWrittenByPython() throws {
        let file = try SafeTensorsFile(path: fixture("views.safetensors"))
        #expect(file.tensors["transposed"]?.shape == [6, 4])
        #expect(file.tensors["bfloat16"]?.dtype == .bfloat16)
        #expect(file.tensors["scalar"]?.shape == [])
        #expect(file.tensors["scalar"]?.toDoubles() == [2.5])
        #expect(file.tensors["empty"]?.count == 0)
    }

    @Test(arguments: [
        ([UInt8](), "shorter than the 8-byte header length"),
        ([200, 0, 0, 0, 0, 0, 0, 0, 123], "truncated: the header says 200 bytes"),
        ([255, 255, 255, 255, 255, 255, 255, 255], "exceeds"),
    ])
    func rejectsBrokenHeaderLengths(bytes: [UInt8], message: String) {
        let error = #expect(throws: TensorFileError.self) { try SafeTensorsFile(path: temporaryFile(bytes)) }
        #expect(error?.reason.contains(message) == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 4), "data section holds 4 bytes"),
        (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 8), "needs 12 bytes but data_offsets give 8"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, [UInt8](repeating: 0, count: 8), "not two ordered"),
        (#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#, [], "not a non-negative integer"),
        (#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, [0], "unsupported dtype Q4"),
        (#"{"a":{"shape":[1]}}"#, [0], "needs dtype, shape and data_offsets"),
        (#"{"a": nope"#, [], "not valid JSON"),
        (#"[1, 2]"#, [], "not a JSON object"),
        (#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, [0, 0, 0, 0], "too large"),
    ])
    func rejectsHeadersThatLie(header: String, data: [UInt8], message: String) {
        let error = #expect(throws: TensorFileError.self) {
            try SafeTensorsFile(path: temporaryFile(safetensors(header: header, data: data)))
        }
        #expect(error?.reason.contains(message) == true, "\(String(describing: error))")
    }

    @Test func aTruncatedRealFileIsAnErrorNotACrash() throws {
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("views.safetensors"))))
        for cut in [1, 7, 9, 100, whole.count - 1] {
            #expect(throws: TensorFileError.self) { try SafeTensorsFile(path: temporaryFile(Array(whole.prefix(cut)))) }
        }
    }

    @Test func aMissingFileSaysSo() {
        let error = #expect(throws: TensorFileError.self) { try SafeTensorsFile(path: "/nonexistent/model.safetensors") }
        #expect(error?.reason.contains("cannot open") == true)
    }
}
