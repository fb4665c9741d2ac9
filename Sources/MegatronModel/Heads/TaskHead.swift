import MegatronBackend

/// The layers on top of the encoder: one case per Hugging Face head class, with the weights it owns.
enum TaskHead: Sendable {
    /// `MegatronBertModel`: no head.
    case none
    /// `cls.predictions` + `cls.seq_relationship` (1024 → 2 on the pooled output).
    case preTraining(MaskedLMHead, nextSentence: Linear)
    /// `cls.predictions`.
    case maskedLM(MaskedLMHead)
    /// `cls.seq_relationship` (H → 2) on the pooled output.
    case nextSentence(Linear)
    /// `classifier` (H → labels) on the pooled output (sequence classification).
    case sequenceLogits(Linear)
    /// `classifier` at every position (token classification).
    case tokenLogits(Linear)
    /// `qa_outputs` (H → 2) at every position, split into start and end.
    case span(Linear)
    /// `classifier` (H → 1) on each choice's pooled output.
    case choiceScores(Linear)

    init(_ head: ModelHead, _ loader: WeightLoader, config: BertConfig, wordEmbeddings: any PreparedMatrix) throws {
        let h = config.hiddenSize
        func predictions() throws -> MaskedLMHead {
            try MaskedLMHead(loader, "cls.predictions", config: config, wordEmbeddings: wordEmbeddings)
        }
        switch head {
        case .base: self = .none
        case .preTraining:
            self = .preTraining(try predictions(), nextSentence: try Linear(loader, "cls.seq_relationship", in: h, out: 2))
        case .maskedLM: self = .maskedLM(try predictions())
        case .nextSentencePrediction: self = .nextSentence(try Linear(loader, "cls.seq_relationship", in: h, out: 2))
        case .sequenceClassification: self = .sequenceLogits(try Linear(loader, "classifier", in: h, out: config.numLabels))
        case .tokenClassification: self = .tokenLogits(try Linear(loader, "classifier", in: h, out: config.numLabels))
        case .questionAnswering: self = .span(try Linear(loader, "qa_outputs", in: h, out: 2))
        case .multipleChoice: self = .choiceScores(try Linear(loader, "classifier", in: h, out: 1))
        }
    }

    /// The head's output tensors on the backend's device, each with the shape it has on the host, in the order
    /// `outputs` reads them. hidden (B·S, H); pooled (B, H) when the model has a pooler (always, for the heads that
    /// read it); `choices` for a multiple-choice batch.
    func deviceOutputs(hidden: any DeviceTensor, pooled: (any DeviceTensor)?, batch b: Int, sequence s: Int, choices: Int?,
                       on backend: any Backend) throws -> [(tensor: any DeviceTensor, shape: [Int])] {
        func requirePooled() throws -> any DeviceTensor {
            guard let pooled else { throw ModelError(.internal, "internal error: this head needs the pooler, which was not loaded") }
            return pooled
        }
        switch self {
        case .none:
            return []
        case .preTraining(let mlm, let nextSentence):
            return [(try mlm(hidden, on: backend), [b, s, mlm.decoder.outFeatures]),
                    (try nextSentence(try requirePooled(), on: backend), [b, 2])]
        case .maskedLM(let mlm):
            return [(try mlm(hidden, on: backend), [b, s, mlm.decoder.outFeatures])]
        case .nextSentence(let linear):
            return [(try linear(try requirePooled(), on: backend), [b, 2])]
        case .sequenceLogits(let linear):
            return [(try linear(try requirePooled(), on: backend), [b, linear.outFeatures])]
        case .tokenLogits(let linear):
            return [(try linear(hidden, on: backend), [b, s, linear.outFeatures])]
        case .span(let linear):
            return [(try linear(hidden, on: backend), [b, s, 2])]  // (B·S, 2): start, end
        case .choiceScores(let linear):
            guard let c = choices else {
                throw ModelError("a multiple-choice model takes input_ids shaped (batch, choices, sequence)")
            }
            return [(try linear(try requirePooled(), on: backend), [b / c, c])]
        }
    }

    /// The head's outputs, on the host (arguments as for `deviceOutputs`).
    func outputs(hidden: any DeviceTensor, pooled: (any DeviceTensor)?, batch b: Int, sequence s: Int, choices: Int?,
                 on backend: any Backend) throws -> HeadOutput? {
        let tensors = try deviceOutputs(hidden: hidden, pooled: pooled, batch: b, sequence: s, choices: choices, on: backend)
        func host(_ i: Int) throws -> Tensor { try backend.download(tensors[i].tensor).reshape(tensors[i].shape) }
        switch self {
        case .none: return nil
        case .preTraining: return .preTraining(predictionLogits: try host(0), seqRelationshipLogits: try host(1))
        case .maskedLM: return .maskedLM(logits: try host(0))
        case .nextSentence: return .nextSentence(logits: try host(0))
        case .sequenceLogits: return .sequenceClassification(logits: try host(0))
        case .tokenLogits: return .tokenClassification(logits: try host(0))
        case .choiceScores: return .multipleChoice(logits: try host(0))
        case .span:
            let both = try backend.download(tensors[0].tensor)  // (B·S, 2)
            let start = Tensor(uninitializedShape: [b, s]), end = Tensor(uninitializedShape: [b, s])
            for i in 0..<(b * s) {
                start[i] = both[2 * i]
                end[i] = both[2 * i + 1]
            }
            return .questionAnswering(startLogits: start, endLogits: end)
        }
    }

    /// Parameters the head adds (the tied decoder is the word embedding, counted there).
    var parameterCount: Int {
        switch self {
        case .none: 0
        case .preTraining(let mlm, let nsp): mlm.parameterCount + nsp.parameterCount
        case .maskedLM(let mlm): mlm.parameterCount
        case .nextSentence(let l), .sequenceLogits(let l), .tokenLogits(let l), .span(let l), .choiceScores(let l): l.parameterCount
        }
    }
}
