import Foundation
import MegatronBackend
import MegatronCPU
import MegatronCUDA
import MegatronModel

/// Where a model runs — the one place that knows every backend: `auto` (an NVIDIA GPU when a usable one and the CUDA libraries are found, else the CPU),
/// `cpu`, or `cuda(n)` (GPU n, failing with the reason when it cannot be used).
///
/// ```swift
/// let (backend, note) = try Device.auto.open(dtype: .fp16)
/// if let note { print(note) }  // "device: cuda:0, NVIDIA H100 80GB HBM3 (sm_90, ...)" or "device: cpu (...)"
/// let model = try MegatronBERTModel(path: "/models/megatron-bert-cased-345m", dtype: .fp16, backend: backend)
/// ```
public enum Device: Sendable, Equatable, CustomStringConvertible {
    case auto
    case cpu
    case cuda(Int)

    /// Parses "auto", "cpu", "cuda" (GPU 0) or "cuda:N".
    public init?(_ text: String) {
        switch text {
        case "auto": self = .auto
        case "cpu": self = .cpu
        case "cuda": self = .cuda(0)
        default:
            guard text.hasPrefix("cuda:"), let n = Int(text.dropFirst(5)), n >= 0 else { return nil }
            self = .cuda(n)
        }
    }

    public var description: String {
        switch self {
        case .auto: "auto"
        case .cpu: "cpu"
        case .cuda(let n): "cuda:\(n)"
        }
    }

    /// Opens the backend for a model kept in `dtype`.
    /// - Parameter tf32: FP32 products on the GPU may use TF32 tensor cores (faster, ~1e-3 relative error).
    /// - Returns: the backend and one line saying which device runs the model (and, for `auto` on the CPU, why).
    /// - Throws: for `cuda(n)`, the reason the GPU cannot be used (no driver, no such GPU, a library missing, an
    ///   int8 model); `auto` and `cpu` never throw.
    public func open(dtype: DType, tf32: Bool = false) throws -> (backend: any Backend, note: String) {
        do { _ = try System.threads() } catch let error as BackendError {  // a bad value is an error before any work
            throw ModelError(.unsupported, error.description)
        }
        switch self {
        case .cpu:
            return (CPUBackend(), "device: cpu")
        case .cuda(let n):
            if let why = CUDABackend.unsupportedReason(for: dtype) { throw ModelError(.unsupported, why) }
            do {
                let backend = try CUDABackend(device: n, tf32: tf32)
                return (backend, "device: cuda:\(n), \(backend.device.summary)")
            } catch let error as CUDAUnavailable {
                throw ModelError(.unsupported, "--device cuda:\(n): CUDA unavailable: \(error.description)")
            } catch let error as CUDAError {
                throw ModelError(.internal, "--device cuda:\(n): \(error.description)")
            }
        case .auto:
            if CUDABackend.unsupportedReason(for: dtype) != nil { return (CPUBackend(), "device: cpu (\(dtype) runs on the CPU)") }
            do {
                let backend = try CUDABackend(device: 0, tf32: tf32)
                return (backend, "device: cuda:0, \(backend.device.summary)")
            } catch {
                return (CPUBackend(), "device: cpu (CUDA unavailable: \(error))")
            }
        }
    }
}
