/// Which Hugging Face model class a checkpoint is: the encoder alone or the encoder with a task head.
public enum ModelHead: String, Sendable, CaseIterable {
    /// `MegatronBertModel` / `BertModel`: `last_hidden_state` (+ `pooler_output` when the pooler is present).
    case base = "Model"
    /// Masked LM + next-sentence heads: `prediction_logits`, `seq_relationship_logits`.
    case preTraining = "ForPreTraining"
    /// `logits` over the vocabulary at every position.
    case maskedLM = "ForMaskedLM"
    /// `logits` (2): index 0 = "B follows A".
    case nextSentencePrediction = "ForNextSentencePrediction"
    /// `logits` (num_labels) from the pooled output.
    case sequenceClassification = "ForSequenceClassification"
    /// `logits` (num_labels) at every position.
    case tokenClassification = "ForTokenClassification"
    /// `start_logits`, `end_logits` at every position.
    case questionAnswering = "ForQuestionAnswering"
    /// `logits` (num_choices): one score per choice from the pooled output.
    case multipleChoice = "ForMultipleChoice"

    /// Reads the head from an `architectures` entry such as `MegatronBertForMaskedLM` or `BertModel`.
    public init?(architectureName name: String) {
        let suffix: Substring
        if name.hasPrefix("MegatronBert") { suffix = name.dropFirst("MegatronBert".count) }
        else if name.hasPrefix("Bert") { suffix = name.dropFirst("Bert".count) }
        else { return nil }
        self.init(rawValue: String(suffix))
    }

    /// Infers the head from the tensor names when a config has no `architectures`.
    static func infer(fromKeys keys: Set<String>) throws -> ModelHead {
        let mlm = keys.contains { $0.hasPrefix("cls.predictions.") }
        let nsp = keys.contains { $0.hasPrefix("cls.seq_relationship.") }
        if mlm && nsp { return .preTraining }
        if mlm { return .maskedLM }
        if nsp { return .nextSentencePrediction }
        if keys.contains(where: { $0.hasPrefix("qa_outputs.") }) { return .questionAnswering }
        if keys.contains(where: { $0.hasPrefix("classifier.") }) {
            throw ModelError("the checkpoint has a 'classifier' head but config.json has no architectures entry to say whether it is sequence classification, token classification or multiple choice; add e.g. \"architectures\": [\"MegatronBertForSequenceClassification\"]")
        }
        return .base
    }

    /// Whether the head reads the pooled [CLS] output (so the pooler must be present).
    var needsPooler: Bool {
        switch self {
        case .preTraining, .nextSentencePrediction, .sequenceClassification, .multipleChoice: true
        default: false
        }
    }
}
