import Foundation
import Testing
@testable import MegatronCUDA
import TestSupport

/// What happens where CUDA is missing (every CI machine): clear reasons, never a crash.
@Suite struct CUDALoaderTests {
    static var hasDriver: Bool { CUDALibrarySearch.open(["libcuda.so.1"]) != nil }

    @Test(.enabled(if: !CUDALoaderTests.hasDriver, "this machine has an NVIDIA driver; the no-driver path cannot be seen here"))
    func noDriverIsAClearReason() throws {
        do {
            _ = try CUDABackend(device: 0)
            Issue.record("a CUDA backend opened without a driver")
        } catch let error as CUDAUnavailable {
            #expect(error.description.contains("libcuda.so.1 was not found"), "\(error)")
            #expect(error.description.contains("--device cpu"), "the message says what to do: \(error)")
        }
    }

    @Test func theEnvironmentVariableComesFirst() throws {
        let directory = "/opt/some/cuda/lib64"
        let environment = [CUDALibrarySearch.environmentVariable: directory + ":/nonexistent"]
        #expect(Array(CUDALibrarySearch.directories(Settings(environment: environment)).prefix(2)) == [directory, "/nonexistent"])
    }

    /// PyTorch users have the libraries as nvidia-* wheels: CUDA 13's share nvidia/cu13/lib, CUDA 12's have a folder each.
    @Test func theWheelsOfAVirtualEnvironmentAreSearched() throws {
        let root = Scratch.path("venv")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let wheels = ["cu13", "cublas", "cuda_nvrtc"].map { "\(root)/lib/python3.12/site-packages/nvidia/\($0)/lib" }
        for dir in wheels { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let found = CUDALibrarySearch.directories(Settings(environment: ["VIRTUAL_ENV": root]))
        #expect(Array(found.prefix(3)) == wheels)
    }

    /// `pip install megatron-bert[cuda]` puts the program (in megatron_bert/bin) and NVIDIA's wheels in one site-packages:
    /// they are found first, without activating the environment.
    @Test func theSitePackagesTheProgramIsInstalledInComeFirst() throws {
        let root = Scratch.path("installed")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let packages = "\(root)/lib/python3.11/site-packages"
        try FileManager.default.createDirectory(atPath: packages + "/nvidia/cu13/lib", withIntermediateDirectories: true)
        let found = CUDALibrarySearch.directories(Settings(environment: [:]), executable: packages + "/megatron_bert/bin/megatron-bert")
        #expect(found.first == packages + "/nvidia/cu13/lib")
        let tarball = CUDALibrarySearch.directories(Settings(environment: [:]), executable: root + "/bin/megatron-bert")
        #expect(!tarball.contains(packages + "/nvidia/cu13/lib"))
    }

    @Test func aLibraryThatIsNotThereIsNil() {
        #expect(CUDALibrarySearch.open(["libnot-a-cuda-library.so.99"]) == nil)
    }

    @Test func memoryClassesBoundTheWaste() {
        #expect(DeviceMemoryPool.sizeClass(1) == 512)
        #expect(DeviceMemoryPool.sizeClass(513) == 1024)
        #expect(DeviceMemoryPool.sizeClass(1 << 20) == 2 << 20)
        #expect(DeviceMemoryPool.sizeClass((2 << 20) + 1) == 4 << 20)
        for bytes in [1, 700, 999_999, 1 << 20, 5_000_000, 123_456_789] {
            let size = DeviceMemoryPool.sizeClass(bytes)
            #expect(size >= bytes && size - bytes < max(512, 2 << 20))
        }
    }
}
