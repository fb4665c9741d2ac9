#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// CUDA is not usable here: the message says what is missing and what to do. (`--device auto` prints it as one
/// warning line and runs on the CPU; `--device cuda` fails with it.)
public struct CUDAUnavailable: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where the CUDA libraries are looked for, in order: the directories of `$MEGATRON_BERT_CUDA_PATH`
/// (colon-separated), the `nvidia-*` Python wheels' `lib` folders (as PyTorch users have them: in `$VIRTUAL_ENV`,
/// `$CONDA_PREFIX`, `~/.local` and the system's site-packages; first of all the site-packages this program is installed
/// in, where `pip install megatron-bert[cuda]` puts both the program and the wheels, activated or not), then the
/// loader's default path (`LD_LIBRARY_PATH`, ldconfig's cache).
public enum CUDALibrarySearch {
    /// The environment variable naming extra directories.
    public static let environmentVariable = "MEGATRON_BERT_CUDA_PATH"

    /// Candidate directories, most specific first (the loader's own path is tried last, by bare name).
    public static var directories: [String] { directories(.current) }

    /// The candidate directories for the given settings.
    /// - Parameter executable: this program's path; when it lies in a site-packages folder (the wheel's
    ///   `…/site-packages/megatron_bert/bin/megatron-bert`), that folder's NVIDIA wheels come first.
    static func directories(_ settings: Settings, executable: String? = installedExecutable) -> [String] {
        var result = (settings[.cudaPath] ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
        let fm = FileManager.default
        func wheels(_ packages: String) {
            // CUDA 13 wheels share nvidia/cu13/lib; CUDA 12 wheels have one folder per library.
            for sub in ["cu13", "cu12", "cublas", "cuda_nvrtc", "cuda_runtime"] {
                let dir = "\(packages)/nvidia/\(sub)/lib"
                if fm.fileExists(atPath: dir), !result.contains(dir) { result.append(dir) }
            }
        }
        if let executable, let range = executable.range(of: "/site-packages/") ?? executable.range(of: "/dist-packages/") {
            wheels(String(executable[..<range.upperBound].dropLast()))
        }
        let prefixes = [settings[.virtualEnv], settings[.condaPrefix]].compactMap { $0 } + [NSHomeDirectory() + "/.local", "/usr/local", "/usr"]
        for prefix in prefixes {
            for libDir in ["lib", "lib64"] {
                let base = prefix + "/" + libDir
                guard let entries = try? fm.contentsOfDirectory(atPath: base) else { continue }
                for python in entries.sorted().reversed() where python.hasPrefix("python3") {
                    for packages in ["site-packages", "dist-packages"] { wheels("\(base)/\(python)/\(packages)") }
                }
            }
        }
        return result
    }

    /// This program's own file (`/proc/self/exe` resolved), or nil where it cannot be read.
    static let installedExecutable: String? = {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return count > 0 ? String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }()

    /// dlopen's the first of `names` found in `directories`, else by bare name on the loader's path.
    /// - Returns: the handle and the path (or name) it was opened from.
    static func open(_ names: [String], global: Bool = false) -> (UnsafeMutableRawPointer, String)? {
        let flags = RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL)
        for dir in directories {
            for name in names {
                let path = dir + "/" + name
                if FileManager.default.fileExists(atPath: path), let handle = dlopen(path, flags) { return (handle, path) }
            }
        }
        for name in names {
            if let handle = dlopen(name, flags) { return (handle, name) }
        }
        return nil
    }

    /// A symbol of an opened library as a C function type.
    static func symbol<F>(_ handle: UnsafeMutableRawPointer, _ name: String, library: String, as type: F.Type) throws -> F {
        guard let pointer = dlsym(handle, name) else {
            throw CUDAUnavailable("\(library) has no \(name): the library is older than this program needs (CUDA 12 or newer)")
        }
        return unsafeBitCast(pointer, to: F.self)
    }
}

/// The CUDA driver API (`libcuda.so.1`), the few entry points the backend uses.
final class CUDADriver: @unchecked Sendable {
    typealias Result = Int32
    let path: String
    let cuInit: @convention(c) (UInt32) -> Result
    let cuDriverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Result
    let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Result
    let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Result
    let cuDeviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> Result
    let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32) -> Result
    let cuCtxSetCurrent: @convention(c) (OpaquePointer?) -> Result
    let cuCtxSynchronize: @convention(c) () -> Result
    let cuMemAlloc: @convention(c) (UnsafeMutablePointer<UInt64>, Int) -> Result
    let cuMemFree: @convention(c) (UInt64) -> Result
    let cuMemGetInfo: @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> Result
    let cuMemcpyHtoD: @convention(c) (UInt64, UnsafeRawPointer, Int) -> Result
    let cuMemcpyDtoH: @convention(c) (UnsafeMutableRawPointer, UInt64, Int) -> Result
    let cuMemcpyDtoD: @convention(c) (UInt64, UInt64, Int) -> Result
    let cuModuleLoadData: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafeRawPointer) -> Result
    let cuModuleGetFunction: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UnsafePointer<CChar>) -> Result
    let cuLaunchKernel: @convention(c) (OpaquePointer?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, OpaquePointer?,
                                        UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Result
    let cuGetErrorString: @convention(c) (Result, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Result

    static let outOfMemory: Result = 2

    /// Opens libcuda.so.1; throws when there is no driver.
    init() throws {
        guard let (handle, path) = CUDALibrarySearch.open(["libcuda.so.1", "libcuda.so"]) else {
            throw CUDAUnavailable("no NVIDIA driver: libcuda.so.1 was not found (install the NVIDIA driver, or run with --device cpu)")
        }
        self.path = path
        func f<F>(_ name: String, _ type: F.Type) throws -> F {
            try CUDALibrarySearch.symbol(handle, name, library: "libcuda", as: type)
        }
        cuInit = try f("cuInit", type(of: cuInit))
        cuDriverGetVersion = try f("cuDriverGetVersion", type(of: cuDriverGetVersion))
        cuDeviceGetCount = try f("cuDeviceGetCount", type(of: cuDeviceGetCount))
        cuDeviceGet = try f("cuDeviceGet", type(of: cuDeviceGet))
        cuDeviceGetName = try f("cuDeviceGetName", type(of: cuDeviceGetName))
        cuDeviceGetAttribute = try f("cuDeviceGetAttribute", type(of: cuDeviceGetAttribute))
        cuDeviceTotalMem = try f("cuDeviceTotalMem_v2", type(of: cuDeviceTotalMem))
        cuDevicePrimaryCtxRetain = try f("cuDevicePrimaryCtxRetain", type(of: cuDevicePrimaryCtxRetain))
        cuCtxSetCurrent = try f("cuCtxSetCurrent", type(of: cuCtxSetCurrent))
        cuCtxSynchronize = try f("cuCtxSynchronize", type(of: cuCtxSynchronize))
        cuMemAlloc = try f("cuMemAlloc_v2", type(of: cuMemAlloc))
        cuMemFree = try f("cuMemFree_v2", type(of: cuMemFree))
        cuMemGetInfo = try f("cuMemGetInfo_v2", type(of: cuMemGetInfo))
        cuMemcpyHtoD = try f("cuMemcpyHtoD_v2", type(of: cuMemcpyHtoD))
        cuMemcpyDtoH = try f("cuMemcpyDtoH_v2", type(of: cuMemcpyDtoH))
        cuMemcpyDtoD = try f("cuMemcpyDtoD_v2", type(of: cuMemcpyDtoD))
        cuModuleLoadData = try f("cuModuleLoadData", type(of: cuModuleLoadData))
        cuModuleGetFunction = try f("cuModuleGetFunction", type(of: cuModuleGetFunction))
        cuLaunchKernel = try f("cuLaunchKernel", type(of: cuLaunchKernel))
        cuGetErrorString = try f("cuGetErrorString", type(of: cuGetErrorString))
    }

    /// The driver's text for an error code.
    func message(_ code: Result) -> String {
        var text: UnsafePointer<CChar>?
        if cuGetErrorString(code, &text) == 0, let text { return String(cString: text) }
        return "CUDA error \(code)"
    }

    /// Throws `BackendError` with `what` and the driver's message unless `code` is success.
    func check(_ code: Result, _ what: @autoclosure () -> String) throws {
        guard code != 0 else { return }
        throw CUDAError(what() + ": " + message(code) + " (CUDA error \(code))")
    }
}

/// A CUDA call failed after the device was opened (a kernel launch, a copy, a product, memory).
public struct CUDAError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// cuBLASLt (`libcublasLt.so.13` or `.12`): matrix products.
final class CUBLASLt: @unchecked Sendable {
    typealias Status = Int32
    let path: String
    let version: Int
    let create: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    let descCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, Int32) -> Status
    let descSetAttribute: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Status
    let layoutCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, UInt64, UInt64, Int64) -> Status
    let layoutSetAttribute: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Status
    let preferenceCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    let preferenceSetAttribute: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Status
    /// (handle, desc, A, B, C, D layouts, preference, requested, results, returned)
    let heuristic: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                   OpaquePointer?, Int32, UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> Status
    /// (handle, desc, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo, workspace, workspaceSize, stream)
    let matmul: @convention(c) (OpaquePointer?, OpaquePointer?, UnsafeRawPointer, UnsafeRawPointer?, OpaquePointer?,
                                UnsafeRawPointer?, OpaquePointer?, UnsafeRawPointer, UnsafeRawPointer?, OpaquePointer?,
                                UnsafeMutableRawPointer?, OpaquePointer?, UnsafeRawPointer?, UnsafeMutableRawPointer?, Int,
                                OpaquePointer?) -> Status
    let statusString: @convention(c) (Status) -> UnsafePointer<CChar>?

    init() throws {
        guard let (handle, path) = CUDALibrarySearch.open(["libcublasLt.so.13", "libcublasLt.so.12"]) else {
            throw CUDAUnavailable("cuBLASLt was not found (libcublasLt.so.13 or .12): install the CUDA toolkit's libraries or `pip install nvidia-cublas`, or name its folder in $\(CUDALibrarySearch.environmentVariable)")
        }
        self.path = path
        func f<F>(_ name: String, _ type: F.Type) throws -> F {
            try CUDALibrarySearch.symbol(handle, name, library: "cuBLASLt", as: type)
        }
        let getVersion = try f("cublasLtGetVersion", (@convention(c) () -> Int).self)
        version = getVersion()
        create = try f("cublasLtCreate", type(of: create))
        descCreate = try f("cublasLtMatmulDescCreate", type(of: descCreate))
        descSetAttribute = try f("cublasLtMatmulDescSetAttribute", type(of: descSetAttribute))
        layoutCreate = try f("cublasLtMatrixLayoutCreate", type(of: layoutCreate))
        layoutSetAttribute = try f("cublasLtMatrixLayoutSetAttribute", type(of: layoutSetAttribute))
        preferenceCreate = try f("cublasLtMatmulPreferenceCreate", type(of: preferenceCreate))
        preferenceSetAttribute = try f("cublasLtMatmulPreferenceSetAttribute", type(of: preferenceSetAttribute))
        heuristic = try f("cublasLtMatmulAlgoGetHeuristic", type(of: heuristic))
        matmul = try f("cublasLtMatmul", type(of: matmul))
        statusString = try f("cublasLtGetStatusString", type(of: statusString))
    }

    func check(_ status: Status, _ what: @autoclosure () -> String) throws {
        guard status != 0 else { return }
        let text = statusString(status).map { String(cString: $0) } ?? "status \(status)"
        throw CUDAError("cuBLASLt \(what()): \(text)")
    }

    // Values from cublasLt.h, library_types.h and cublas_api.h (CUDA 12 and 13 agree).
    static let r32F: Int32 = 0, r16F: Int32 = 2, r16BF: Int32 = 14
    static let compute32F: Int32 = 68, compute32FFastTF32: Int32 = 77
    static let descTransA: Int32 = 3, descTransB: Int32 = 4, descEpilogue: Int32 = 7, descBiasPointer: Int32 = 8
    static let epilogueDefault: UInt32 = 1, epilogueBias: UInt32 = 4
    static let layoutBatchCount: Int32 = 5, layoutStridedBatchOffset: Int32 = 6
    static let preferenceMaxWorkspace: Int32 = 1
    /// sizeof(cublasLtMatmulHeuristicResult_t): algo (64), workspaceSize (8), state (4), wavesCount (4), reserved (16).
    static let heuristicResultSize = 96
}

/// NVRTC (`libnvrtc.so.13` or `.12`, with its builtins library): compiles the kernels at run time.
final class NVRTC: @unchecked Sendable {
    typealias Result = Int32
    let path: String
    let version: (major: Int32, minor: Int32)
    let createProgram: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafePointer<CChar>, UnsafePointer<CChar>?, Int32,
                                       UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    let compileProgram: @convention(c) (OpaquePointer?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    let destroyProgram: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Result
    let getLogSize: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Result
    let getLog: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Result
    let getCUBINSize: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Result
    let getCUBIN: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Result
    let getPTXSize: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Result
    let getPTX: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Result
    let getNumSupportedArchs: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    let getSupportedArchs: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    let errorString: @convention(c) (Result) -> UnsafePointer<CChar>?

    init() throws {
        // The builtins library sits beside libnvrtc; loading it first (global) lets libnvrtc find it in any layout.
        for dir in CUDALibrarySearch.directories {
            if let entries = try? FileManager.default.contentsOfDirectory(atPath: dir),
               let builtins = entries.sorted().first(where: { $0.hasPrefix("libnvrtc-builtins.so") }),
               entries.contains(where: { $0.hasPrefix("libnvrtc.so") }) {
                _ = dlopen(dir + "/" + builtins, RTLD_NOW | RTLD_GLOBAL)
                break
            }
        }
        guard let (handle, path) = CUDALibrarySearch.open(["libnvrtc.so.13", "libnvrtc.so.12"]) else {
            throw CUDAUnavailable("NVRTC was not found (libnvrtc.so.13 or .12), which compiles the GPU kernels: `pip install nvidia-cuda-nvrtc` or install the CUDA toolkit, or name its folder in $\(CUDALibrarySearch.environmentVariable)")
        }
        self.path = path
        func f<F>(_ name: String, _ type: F.Type) throws -> F {
            try CUDALibrarySearch.symbol(handle, name, library: "NVRTC", as: type)
        }
        let getVersion = try f("nvrtcVersion", (@convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Result).self)
        var major: Int32 = 0, minor: Int32 = 0
        _ = getVersion(&major, &minor)
        version = (major, minor)
        createProgram = try f("nvrtcCreateProgram", type(of: createProgram))
        compileProgram = try f("nvrtcCompileProgram", type(of: compileProgram))
        destroyProgram = try f("nvrtcDestroyProgram", type(of: destroyProgram))
        getLogSize = try f("nvrtcGetProgramLogSize", type(of: getLogSize))
        getLog = try f("nvrtcGetProgramLog", type(of: getLog))
        getCUBINSize = try f("nvrtcGetCUBINSize", type(of: getCUBINSize))
        getCUBIN = try f("nvrtcGetCUBIN", type(of: getCUBIN))
        getPTXSize = try f("nvrtcGetPTXSize", type(of: getPTXSize))
        getPTX = try f("nvrtcGetPTX", type(of: getPTX))
        getNumSupportedArchs = try f("nvrtcGetNumSupportedArchs", type(of: getNumSupportedArchs))
        getSupportedArchs = try f("nvrtcGetSupportedArchs", type(of: getSupportedArchs))
        errorString = try f("nvrtcGetErrorString", type(of: errorString))
    }

    /// The SM architectures this NVRTC compiles for (e.g. 75, 80, 86, 89, 90, 100, 120).
    var supportedArchitectures: [Int] {
        var count: Int32 = 0
        guard getNumSupportedArchs(&count) == 0, count > 0 else { return [] }
        var archs = [Int32](repeating: 0, count: Int(count))
        guard getSupportedArchs(&archs) == 0 else { return [] }
        return archs.map(Int.init)
    }

    func message(_ code: Result) -> String { errorString(code).map { String(cString: $0) } ?? "NVRTC error \(code)" }

    /// Opened once per process (nil with the reason when it is not there).
    static let shared: Swift.Result<NVRTC, CUDAUnavailable> = {
        do { return .success(try NVRTC()) } catch let error as CUDAUnavailable { return .failure(error) } catch {
            return .failure(CUDAUnavailable("\(error)"))
        }
    }()
}
