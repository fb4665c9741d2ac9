import Testing
@testable import MegatronCompute

@Suite struct CPUBackendTests {
    final class ForeignTensor: DeviceTensor {
        let shape = [1, 4]
    }

    /// A library user who hands the CPU backend another backend's tensor gets an error, not a crash.
    @Test func anotherBackendsTensorIsAnError() {
        let backend = CPUBackend()
        #expect(throws: BackendError.self) { try backend.download(ForeignTensor()) }
        #expect(throws: BackendError.self) { try backend.activate(ForeignTensor(), .gelu) }
        #expect(throws: BackendError.self) { try backend.gatherRows(ForeignTensor(), rows: [0]) }
    }
}
