import Testing
@testable import TensorFiles

func unpickle(_ bytes: [UInt8], reducer: PickleMachine.Reducer? = nil) throws -> PickleValue {
    try bytes.withUnsafeBytes { raw in
        var machine = PickleMachine(bytes: raw)
        if let reducer { machine.reducer = reducer }
        return try machine.load()
    }
}

@Suite struct PickleMachineTests {
    @Test func readsDictsListsAndScalars() throws {
        // pickle.dumps({"a": [1, -2, 300, 70000], "b": (None, True, 1.5), "c": b"xy"}, protocol=2)
        let bytes: [UInt8] = [
            0x80, 0x02, 0x7d, 0x71, 0x00, 0x28, 0x58, 0x01, 0x00, 0x00, 0x00, 0x61, 0x71, 0x01, 0x5d, 0x71, 0x02,
            0x28, 0x4b, 0x01, 0x4a, 0xfe, 0xff, 0xff, 0xff, 0x4d, 0x2c, 0x01, 0x4a, 0x70, 0x11, 0x01, 0x00, 0x65,
            0x58, 0x01, 0x00, 0x00, 0x00, 0x62, 0x71, 0x03, 0x4e, 0x88, 0x47, 0x3f, 0xf8, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x87, 0x71, 0x04, 0x58, 0x01, 0x00, 0x00, 0x00, 0x63, 0x43, 0x02, 0x78, 0x79, 0x75, 0x2e,
        ]
        guard case .dict(let d) = try unpickle(bytes) else { Issue.record("not a dict"); return }
        #expect(d["a"]?.elements?.compactMap(\.int) == [1, -2, 300, 70000])
        let b = try #require(d["b"]?.elements)
        #expect(b.count == 3)
        if case .none = b[0] {} else { Issue.record("b[0] is \(b[0])") }
        #expect(b[1].int == 1)
        if case .float(let f) = b[2] { #expect(f == 1.5) } else { Issue.record("b[2] is \(b[2])") }
        if case .bytes(let c) = d["c"] { #expect(c == [0x78, 0x79]) } else { Issue.record("c") }
    }

    @Test func neverCallsAGlobal() throws {
        // The classic exploit: os.system("echo pwned") via GLOBAL + REDUCE. It must stay inert data.
        let bytes: [UInt8] = [0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8)
            + [0x58, 0x0a, 0, 0, 0] + Array("echo pwned".utf8) + [0x85, 0x52, 0x2e]
        guard case .object(let call) = try unpickle(bytes) else { Issue.record("not kept as an object"); return }
        #expect(call.module == "os")
        #expect(call.name == "system")
        #expect(call.arguments.first?.string == "echo pwned")
    }

    @Test func keepsUnknownClassesWithTheirState() throws {
        // argparse.Namespace(**{'hidden_size': 1024}) as pickle writes it: GLOBAL, EMPTY_TUPLE, NEWOBJ, dict, BUILD.
        let bytes: [UInt8] = [0x80, 0x02, 0x63] + Array("argparse\nNamespace\n".utf8)
            + [0x29, 0x81, 0x7d, 0x58, 11, 0, 0, 0] + Array("hidden_size".utf8) + [0x4d, 0x00, 0x04, 0x73, 0x62, 0x2e]
        guard case .object(let ns) = try unpickle(bytes) else { Issue.record("not an object"); return }
        #expect(ns.name == "Namespace")
        #expect(ns.attribute("hidden_size")?.int == 1024)
    }

    @Test func longIntegersAreSignExtended() throws {
        #expect(try unpickle([0x80, 0x02, 0x8a, 0x01, 0xff, 0x2e]).int == -1)
        #expect(try unpickle([0x80, 0x02, 0x8a, 0x02, 0x00, 0x80, 0x2e]).int == -32768)
        #expect(try unpickle([0x80, 0x02, 0x8a, 0x00, 0x2e]).int == 0)
        if case .bigInt(let b) = try unpickle([0x80, 0x02, 0x8a, 0x09] + [UInt8](repeating: 1, count: 9) + [0x2e]) {
            #expect(b.count == 9)
        } else { Issue.record("not a big int") }
    }

    @Test(arguments: [
        ([UInt8](), "truncated"),
        ([0x80, 0x02, 0x4b], "truncated"),
        ([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x61], "truncated"),
        ([0x80, 0x02, 0x2e], "stack underflow"),
        ([0x80, 0x02, 0x68, 0x05, 0x2e], "memo key 5"),
        ([0x80, 0x02, 0xff, 0x2e], "unsupported pickle opcode 0xff"),
        ([0x80, 0x02, 0x74, 0x2e], "no MARK"),
        ([0x80, 0x02, 0x4b, 0x01, 0x4b, 0x02, 0x52, 0x2e], "not a global"),
        ([0x80, 0x02, 0x4b, 0x01, 0x4b, 0x02, 0x61, 0x2e], "not a list"),
    ])
    func malformedPicklesAreErrors(bytes: [UInt8], message: String) {
        let error = #expect(throws: TensorFileError.self) { try unpickle(bytes) }
        #expect(error?.reason.contains(message) == true, "\(String(describing: error))")
    }
}
