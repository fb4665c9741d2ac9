/// The layers on top of the encoder: one case per Hugging Face head class, with the weights it owns.
enum TaskHead: Sendable {
    /// `MegatronBertModel`: no head.
    case none
    /// `cls.predictions` + `cls.seq_relationship` (1024 → 2 on the pooled output).
    case preTraining(MaskedLMHead, nextSentence: Linear)
    /// `cls.predictions`.
    case maskedLM(MaskedLMHead)
    /// A linear layer on the pooled output: `cls.seq_relationship` (NSP) or `classifier` (sequence classification).
    case pooledLogits(Linear)
    /// `classifier` at every position (token classification).
    case tokenLogits(Linear)
    /// `qa_outputs` (H → 2) at every position, split into start and end.
    case span(Linear)
    /// `classifier` (H → 1) on each choice's pooled output.
    case choiceScores(Linear)

    init(_ head: ModelHead, _ loader: WeightLoader, config: BertConfig, wordEmbeddings: Weight) throws {
        let h = config.hiddenSize
        func predictions() throws -> MaskedLMHead {
            try MaskedLMHead(loader, "cls.predictions", config: config, wordEmbeddings: wordEmbeddings)
        }
        switch head {
        case .base: self = .none
        case .preTraining:
            self = .preTraining(try predictions(), nextSentence: try Linear(loader, "cls.seq_relationship", in: h, out: 2))
        case .maskedLM: self = .maskedLM(try predictions())
        case .nextSentencePrediction: self = .pooledLogits(try Linear(loader, "cls.seq_relationship", in: h, out: 2))
        case .sequenceClassification: self = .pooledLogits(try Linear(loader, "classifier", in: h, out: config.numLabels))
        case .tokenClassification: self = .tokenLogits(try Linear(loader, "classifier", in: h, out: config.numLabels))
        case .questionAnswering: self = .span(try Linear(loader, "qa_outputs", in: h, out: 2))
        case .multipleChoice: self = .choiceScores(try Linear(loader, "classifier", in: h, out: 1))
        }
    }

    /// The head's outputs under HF's names. hidden (B·S, H); pooled (B, H) when the model has a pooler
    /// (always, for the heads that read it); `choices` for a multiple-choice batch.
    func outputs(hidden: Tensor, pooled: Tensor?, batch b: Int, sequence s: Int, choices: Int?) throws
        -> [(name: String, tensor: Tensor)] {
        func requirePooled() throws -> Tensor {
            guard let pooled else { throw ModelError(.internal, "internal error: this head needs the pooler, which was not loaded") }
            return pooled
        }
        switch self {
        case .none:
            return []
        case .preTraining(let mlm, let nextSentence):
            return [("prediction_logits", mlm(hidden, rows: b * s).reshape([b, s, mlm.decoder.outFeatures])),
                    ("seq_relationship_logits", nextSentence(try requirePooled(), rows: b))]
        case .maskedLM(let mlm):
            return [("logits", mlm(hidden, rows: b * s).reshape([b, s, mlm.decoder.outFeatures]))]
        case .pooledLogits(let linear):
            return [("logits", linear(try requirePooled(), rows: b))]
        case .tokenLogits(let linear):
            return [("logits", linear(hidden, rows: b * s).reshape([b, s, linear.outFeatures]))]
        case .span(let linear):
            let both = linear(hidden, rows: b * s)  // (B·S, 2)
            let start = Tensor(uninitializedShape: [b, s]), end = Tensor(uninitializedShape: [b, s])
            for i in 0..<(b * s) {
                start[i] = both[2 * i]
                end[i] = both[2 * i + 1]
            }
            return [("start_logits", start), ("end_logits", end)]
        case .choiceScores(let linear):
            guard let c = choices else {
                throw ModelError("a multiple-choice model takes input_ids shaped (batch, choices, sequence)")
            }
            return [("logits", linear(try requirePooled(), rows: b).reshape([b / c, c]))]
        }
    }

    /// Parameters the head adds (the tied decoder is the word embedding, counted there).
    var parameterCount: Int {
        switch self {
        case .none: 0
        case .preTraining(let mlm, let nsp): mlm.parameterCount + nsp.parameterCount
        case .maskedLM(let mlm): mlm.parameterCount
        case .pooledLogits(let l), .tokenLogits(let l), .span(let l), .choiceScores(let l): l.parameterCount
        }
    }
}
