import Foundation

/// One NVIDIA GPU opened for the backend: the driver, its primary context, the compiled kernels, cuBLASLt and the
/// device memory pool. Everything runs on the context's default stream, in order; host copies wait for it.
///
/// ```swift
/// let gpu = try CUDADevice(ordinal: 0)
/// print(gpu.summary)  // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB), driver 13.0, cuBLASLt 130100, NVRTC 13.0"
/// ```
public final class CUDADevice: @unchecked Sendable {
    public let ordinal: Int
    /// The GPU's name, e.g. "NVIDIA H100 80GB HBM3".
    public let name: String
    /// Compute capability, e.g. (9, 0).
    public let computeCapability: (major: Int, minor: Int)
    public let totalMemory: Int
    /// The driver's CUDA version, e.g. "13.0".
    public let driverVersion: String
    /// cuBLASLt's version number (e.g. 130100) and NVRTC's ("13.0").
    public let cublasLtVersion: Int
    public let nvrtcVersion: String
    /// Where the libraries were loaded from.
    public let libraryPaths: [String]
    /// What the kernels were compiled for, and whether they came from the disk cache.
    public let kernelTarget: String
    public let kernelsCached: Bool

    let driver: CUDADriver
    let lt: CUBLASLt
    let context: OpaquePointer?
    let handle: OpaquePointer?
    let functions: [String: OpaquePointer]
    let pool: DeviceMemoryPool
    /// cuBLASLt's workspace (32 MiB, as NVIDIA recommends for Hopper).
    let workspace: UInt64
    let workspaceBytes = 32 << 20
    /// Serialises the backend's calls (one context, one stream).
    let lock = NSLock()

    /// Opens GPU `ordinal`. Throws `CUDAUnavailable` (no driver, no GPU, a library missing, an old driver) or
    /// `CUDAError` (the kernels did not compile or load).
    public init(ordinal: Int = 0) throws {
        driver = try CUDADriver()
        var status = driver.cuInit(0)
        if status != 0 {
            throw CUDAUnavailable("the NVIDIA driver did not start (\(driver.message(status))): no usable GPU here")
        }
        var count: Int32 = 0
        status = driver.cuDeviceGetCount(&count)
        guard status == 0, count > 0 else { throw CUDAUnavailable("no NVIDIA GPU found (the driver is installed but sees no device)") }
        guard (0..<Int(count)).contains(ordinal) else {
            throw CUDAUnavailable("there is no cuda:\(ordinal): this machine has \(count) GPU\(count == 1 ? "" : "s") (cuda:0\(count > 1 ? "…cuda:\(count - 1)" : ""))")
        }
        self.ordinal = ordinal
        var device: Int32 = 0
        try driver.check(driver.cuDeviceGet(&device, Int32(ordinal)), "cuDeviceGet")
        var nameBuffer = [CChar](repeating: 0, count: 256)
        _ = driver.cuDeviceGetName(&nameBuffer, 255, device)
        name = String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var major: Int32 = 0, minor: Int32 = 0
        _ = driver.cuDeviceGetAttribute(&major, 75, device)
        _ = driver.cuDeviceGetAttribute(&minor, 76, device)
        computeCapability = (Int(major), Int(minor))
        var total = 0
        _ = driver.cuDeviceTotalMem(&total, device)
        totalMemory = total
        var version: Int32 = 0
        _ = driver.cuDriverGetVersion(&version)
        driverVersion = "\(version / 1000).\(version % 1000 / 10)"
        guard major >= 7 else {
            throw CUDAUnavailable("\(name) is sm_\(major)\(minor); the CUDA backend needs sm_70 (Volta) or newer")
        }
        var context: OpaquePointer?
        status = driver.cuDevicePrimaryCtxRetain(&context, device)
        if status == 2 { throw CUDAUnavailable("cuda:\(ordinal) has no memory left for a context (\(driver.message(status)))") }
        try driver.check(status, "opening cuda:\(ordinal)")
        self.context = context
        try driver.check(driver.cuCtxSetCurrent(context), "making cuda:\(ordinal) current")

        lt = try CUBLASLt()
        cublasLtVersion = lt.version
        if lt.version / 10000 > Int(version) / 1000 {
            throw CUDAUnavailable("the NVIDIA driver (CUDA \(driverVersion)) is older than cuBLASLt \(lt.version) needs (CUDA \(lt.version / 10000)): update the driver, or use CUDA \(version / 1000) libraries")
        }
        var handle: OpaquePointer?
        try lt.check(lt.create(&handle), "could not start")
        self.handle = handle
        nvrtcVersion = try KernelCompiler.nvrtcVersion()
        let nvrtc = try NVRTC.shared.get()
        libraryPaths = [driver.path, lt.path, nvrtc.path]

        let image = try KernelCompiler().compile(CUDAKernelSource.source, architecture: Int(major) * 10 + Int(minor))
        kernelTarget = image.target
        kernelsCached = image.cached
        var module: OpaquePointer?
        var bytes = image.bytes
        if image.isPTX { bytes.append(0) }
        let load = driver.cuModuleLoadData
        status = bytes.withUnsafeBytes { load(&module, $0.baseAddress!) }
        if status == 222 || status == 218 {  // CUDA_ERROR_UNSUPPORTED_PTX_VERSION, CUDA_ERROR_INVALID_PTX
            throw CUDAUnavailable("the NVIDIA driver (CUDA \(driverVersion)) cannot load kernels from NVRTC \(nvrtcVersion): update the driver or use an NVRTC no newer than the driver")
        }
        try driver.check(status, "loading the compiled kernels")
        var functions: [String: OpaquePointer] = [:]
        for kernel in CUDAKernelSource.kernelNames {
            var function: OpaquePointer?
            try driver.check(driver.cuModuleGetFunction(&function, module, kernel), "finding kernel \(kernel)")
            functions[kernel] = function
        }
        self.functions = functions
        pool = DeviceMemoryPool(driver: driver, ordinal: ordinal)
        workspace = try pool.allocate(workspaceBytes)
    }

    /// One line for `info` and `bench`.
    public var summary: String {
        "\(name) (sm_\(computeCapability.major)\(computeCapability.minor), "
            + String(format: "%.1f GiB", Double(totalMemory) / 1_073_741_824)
            + "), driver CUDA \(driverVersion), cuBLASLt \(cublasLtVersion), NVRTC \(nvrtcVersion)"
    }

    /// Runs `body` with this device's context current on the calling thread, one caller at a time.
    func withContext<R>(_ body: () throws -> R) throws -> R {
        lock.lock()
        defer { lock.unlock() }
        try driver.check(driver.cuCtxSetCurrent(context), "making cuda:\(ordinal) current")
        return try body()
    }

    /// Launches kernel `name` on a (blocks, gridY, gridZ) grid; `arguments` are the kernel's parameters in order.
    func launch(_ name: String, blocks: Int, threads: Int, gridY: Int = 1, gridZ: Int = 1, _ arguments: [KernelArgument]) throws {
        guard let function = functions[name] else { throw CUDAError("internal error: no kernel \(name)") }
        guard blocks > 0, gridY > 0, gridZ > 0 else { return }
        guard gridY <= 65_535, gridZ <= 65_535 else {
            throw CUDAError("internal error: a (\(blocks), \(gridY), \(gridZ)) grid for \(name) (at most 65,535 in y and z)")
        }
        // Each parameter in an 8-byte slot of one stack buffer, and the array of their addresses beside it (cuLaunchKernel
        // copies them before it returns): no allocation per launch.
        let status = withUnsafeTemporaryAllocation(of: UInt64.self, capacity: arguments.count) { slots in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: arguments.count) { pointers in
                for (i, argument) in arguments.enumerated() {
                    let slot = UnsafeMutableRawPointer(slots.baseAddress! + i)
                    argument.store(at: slot)
                    pointers[i] = slot
                }
                return driver.cuLaunchKernel(function, UInt32(blocks), UInt32(gridY), UInt32(gridZ), UInt32(threads), 1, 1, 0, nil,
                                             pointers.baseAddress, nil)
            }
        }
        try driver.check(status, "launching \(name)")
    }

    /// Blocks for grid-stride kernels over n elements.
    static func blocks(for n: Int, threads: Int = 256) -> Int { max(1, min((n + threads - 1) / threads, 65_535)) }

    /// Copies host bytes to a new device buffer.
    func upload(_ bytes: UnsafeRawBufferPointer) throws -> DeviceBuffer {
        let buffer = try DeviceBuffer(pool: pool, bytes: max(bytes.count, 1))
        if bytes.count > 0 { try driver.check(driver.cuMemcpyHtoD(buffer.address, bytes.baseAddress!, bytes.count), "copying to cuda:\(ordinal)") }
        return buffer
    }

    /// Copies `count` bytes from the device to host memory (waits for the work before it).
    func download(_ address: UInt64, into destination: UnsafeMutableRawPointer, count: Int) throws {
        try driver.check(driver.cuMemcpyDtoH(destination, address, count), "copying from cuda:\(ordinal)")
    }
}

/// A kernel parameter, boxed for cuLaunchKernel.
enum KernelArgument {
    case pointer(UInt64)
    case int32(Int32)
    case int64(Int64)
    case float(Float)

    static func int(_ value: Int) -> KernelArgument { .int32(Int32(value)) }
    static func long(_ value: Int) -> KernelArgument { .int64(Int64(value)) }

    /// Writes the value at `slot` (8 bytes, 8-aligned) as the kernel's parameter type.
    func store(at slot: UnsafeMutableRawPointer) {
        switch self {
        case .pointer(let v): slot.storeBytes(of: v, as: UInt64.self)
        case .int32(let v): slot.storeBytes(of: v, as: Int32.self)
        case .int64(let v): slot.storeBytes(of: v, as: Int64.self)
        case .float(let v): slot.storeBytes(of: v, as: Float.self)
        }
    }
}
