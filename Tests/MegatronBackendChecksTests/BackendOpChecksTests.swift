import Testing
import MegatronBackendChecks
@testable import MegatronBackendChecks
import MegatronCPU

/// The op-level parity harness on the CPU backend: every operation, shape and precision within its bound of the
/// reference (the bounds are `BackendOpChecks.tolerance`; the worst error seen is printed).
@Suite struct BackendOpChecksTests {
    /// Both product libraries and both attention paths of the CPU backend: oneDNN (or OpenBLAS where oneDNN does not
    /// start) with the widest attention kernel, and OpenBLAS with attention through OpenBLAS.
    @Test(arguments: [false, true])
    func everyOperationOfTheCPUBackendMatchesTheReference(openBLAS: Bool) {
        let backend = openBLAS ? CPUBackend(products: .openBLAS, attentionLanes: 0) : CPUBackend()
        let results = BackendOpChecks.run(on: backend)
        #expect(results.count > (openBLAS ? 130 : 170), "every dtype oneDNN runs, int8 not on OpenBLAS: \(results.count) checks")
        for dtype in ["fp32", "fp16", "bf16", "int8"] {
            let worst = results.filter { $0.name.contains(" \(dtype) ") }.map(\.error).max() ?? 0
            print("\(openBLAS ? "openblas" : "default") \(dtype): worst relative error \(worst)")
        }
        for failed in results where !failed.passed {
            Issue.record("\(failed.name): \(failed.failure ?? "error \(failed.error) over \(failed.tolerance)")")
        }
    }

    /// The reference against itself is exact, and every check runs on it.
    @Test func theReferenceMatchesItselfExactly() {
        let results = BackendOpChecks.run(on: ReferenceBackend())
        #expect(!results.isEmpty)
        #expect(results.allSatisfy { $0.failure == nil && $0.error == 0 })
    }

    /// The comparison sees a difference, a wrong shape and a throw: a check that could not fail would prove nothing.
    @Test func aBackendThatDiffersFails() {
        let reference = ReferenceBackend()
        func check(_ result: @escaping (Bool) throws -> Tensor) -> OpCheckResult {
            BackendOpChecks.compare(.init(name: "made up") { backend in try result(backend is ReferenceBackend) },
                                    on: CPUBackend(), reference: reference, tolerance: 1e-4)
        }
        let off = check { isReference in Tensor(shape: [2], values: isReference ? [1, 10] : [1, 10.01]) }
        #expect(!off.passed && abs(off.error - 0.001) < 1e-6)
        let close = check { isReference in Tensor(shape: [2], values: isReference ? [1, 10] : [1, 10.0005]) }
        #expect(close.passed)
        let shape = check { isReference in Tensor(shape: isReference ? [2] : [1, 2], values: [1, 2]) }
        #expect(!shape.passed && shape.failure?.contains("shape") == true)
        let nan = check { isReference in Tensor(shape: [1], values: [isReference ? 1 : .nan]) }
        #expect(!nan.passed)
        struct Broken: Error {}
        let thrown = check { isReference in if isReference { return Tensor(shape: [1]) } else { throw Broken() } }
        #expect(!thrown.passed && thrown.failure != nil)
    }
}
