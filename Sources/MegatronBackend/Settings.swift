import Foundation

/// Every environment variable the package reads, read once — `Settings.current`, at the program's start — into one
/// value that is passed down to what needs it (backends take it in their initialisers; process-wide singletons read
/// `current`). Values are kept as written and checked where they are used, each with an error that names the variable
/// and its choices. `info --json` prints the ones set; the README's Settings table documents each (a test keeps the
/// two in step).
///
/// ```swift
/// let settings = Settings(environment: ["MEGATRON_BERT_THREADS": "4"])
/// print(settings[.threads] ?? "every core")  // "4"
/// let backend = try CUDABackend(device: 0, settings: settings)
/// ```
public struct Settings: Sendable, Equatable {
    /// The variables, under their names in the environment.
    public enum Variable: String, CaseIterable, Sendable {
        case threads = "MEGATRON_BERT_THREADS"
        case products = "MEGATRON_BERT_PRODUCTS"
        case bf16Products = "MEGATRON_BERT_BF16_PRODUCTS"
        case panelProducts = "MEGATRON_BERT_PANEL_PRODUCTS"
        case cudaPath = "MEGATRON_BERT_CUDA_PATH"
        case cudaAttention = "MEGATRON_BERT_CUDA_ATTENTION"
        case cudaPooling = "MEGATRON_BERT_CUDA_POOLING"
        case cudaProfile = "MEGATRON_BERT_CUDA_PROFILE"
        case cache = "MEGATRON_BERT_CACHE"
        case vocab = "MEGATRON_BERT_VOCAB"
        case timings = "MEGATRON_BERT_TIMINGS"
        case prepareAhead = "MEGATRON_BERT_PREPARE_AHEAD"
        case peakMemoryFile = "MEGATRON_BERT_PEAK_MEMORY_FILE"
        case virtualEnv = "VIRTUAL_ENV"
        case condaPrefix = "CONDA_PREFIX"

        /// What it does, in one line (the README's Settings table says the same).
        public var meaning: String {
            switch self {
            case .threads: "threads the CPU backend splits its work across, 1 to 1024 (unset: every core)"
            case .products: "the CPU's product library: onednn or openblas (unset: oneDNN where it starts)"
            case .bf16Products: "BF16 weights on the CPU multiplied as fp32 (widened) or bf16 dot products (unset: the CPU decides)"
            case .panelProducts: "0 turns off our AVX-512 panel kernels for products of few rows"
            case .cudaPath: "colon-separated folders searched first for the CUDA libraries"
            case .cudaAttention: "fused or unfused attention on the GPU (unset: fused)"
            case .cudaPooling: "device or host: where sentence embeddings pool packed rows on the GPU (unset: host)"
            case .cudaProfile: "1: every GPU operation timed (bench prints where a pass spends its time)"
            case .cache: "the cache folder for the downloaded model and compiled GPU kernels (unset: ~/.cache/megatron-bert)"
            case .vocab: "a vocab.txt for models without one (as --vocab)"
            case .timings: "1: the seconds each stage of a command took, on standard error"
            case .prepareAhead: "1 or 0: the embed job tokenizes the next chunk while the device runs (unset: on a GPU only)"
            case .peakMemoryFile: "a file the process appends its peak resident memory to at exit"
            case .virtualEnv: "a Python virtual environment searched for NVIDIA's CUDA wheels"
            case .condaPrefix: "a conda environment searched for NVIDIA's CUDA wheels"
            }
        }
    }

    /// The variables that are set (to anything but the empty string), by variable.
    public let values: [Variable: String]

    /// The settings `environment` holds.
    public init(environment: [String: String]) {
        var values: [Variable: String] = [:]
        for variable in Variable.allCases {
            if let value = environment[variable.rawValue], !value.isEmpty { values[variable] = value }
        }
        self.values = values
    }

    /// The process's settings, read from its environment once.
    public static let current = Settings(environment: ProcessInfo.processInfo.environment)

    /// The value of `variable`, nil when unset or empty.
    public subscript(_ variable: Variable) -> String? { values[variable] }

    /// The variables set, by name, for `info --json`.
    public var fields: [String: String] {
        Dictionary(uniqueKeysWithValues: values.map { ($0.key.rawValue, $0.value) })
    }
}
