/// The model and pipeline initialisers without a `backend:` argument: they run on the CPU, the reference backend.
/// (MegatronModel sees only the `Backend` protocol, so the default lives here, where the backends are known.)
///
/// ```swift
/// let model = try MegatronBERTModel(path: "/models/megatron-bert-cased-345m")  // on CPUBackend()
/// let gpu = try MegatronBERTModel(path: "/models/megatron-bert-cased-345m", dtype: .fp16,
///                                 backend: try Device.auto.open(dtype: .fp16).backend)
/// ```
extension MegatronBERTModel {
    /// `init(path:dtype:backend:)` on the CPU.
    public convenience init(path: String, dtype: DType = .fp32) throws {
        try self.init(path: path, dtype: dtype, backend: CPUBackend())
    }

    /// `init(source:dtype:backend:)` on the CPU.
    public convenience init(source: ModelSource, dtype: DType = .fp32) throws {
        try self.init(source: source, dtype: dtype, backend: CPUBackend())
    }

    /// `init(config:tensors:dtype:backend:)` on the CPU.
    public convenience init(config: BertConfig, tensors: [String: StoredTensor], dtype: DType = .fp32) throws {
        try self.init(config: config, tensors: tensors, dtype: dtype, backend: CPUBackend())
    }

    /// `init(randomWeightsFor:dtype:seed:backend:)` on the CPU.
    public convenience init(randomWeightsFor config: BertConfig, dtype: DType = .fp32, seed: UInt64 = 42) throws {
        try self.init(randomWeightsFor: config, dtype: dtype, seed: seed, backend: CPUBackend())
    }
}

extension Pipeline {
    /// `init(path:dtype:vocabulary:fallbackVocabulary:batchSize:backend:warn:)` on the CPU.
    public convenience init(path: String, dtype: DType = .fp32, vocabulary: String? = nil, fallbackVocabulary: String? = nil,
                            batchSize: Int = 8, warn: @escaping @Sendable (String) -> Void = { _ in }) throws {
        try self.init(path: path, dtype: dtype, vocabulary: vocabulary, fallbackVocabulary: fallbackVocabulary,
                      batchSize: batchSize, backend: CPUBackend(), warn: warn)
    }
}
