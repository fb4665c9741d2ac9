import MegatronBackend

/// What a task head computes, as typed values (host FP32 tensors, shapes as transformers gives them).
///
/// ```swift
/// if case .questionAnswering(let start, let end)? = try model.forward(batch).head { print(start.shape, end.shape) }
/// ```
public enum HeadOutput: Sendable {
    /// Masked-LM logits (B, S, V) and next-sentence logits (B, 2).
    case preTraining(predictionLogits: Tensor, seqRelationshipLogits: Tensor)
    /// Logits over the vocabulary (B, S, V).
    case maskedLM(logits: Tensor)
    /// (B, 2): index 0 = "B follows A".
    case nextSentence(logits: Tensor)
    /// (B, labels).
    case sequenceClassification(logits: Tensor)
    /// (B, S, labels).
    case tokenClassification(logits: Tensor)
    /// (B, S) each.
    case questionAnswering(startLogits: Tensor, endLogits: Tensor)
    /// (B / C, C): one score per choice.
    case multipleChoice(logits: Tensor)

    /// The outputs under Hugging Face's names, in its order (what `forward` writes to files).
    public var named: [(name: String, tensor: Tensor)] {
        switch self {
        case .preTraining(let mlm, let nsp): [("prediction_logits", mlm), ("seq_relationship_logits", nsp)]
        case .maskedLM(let l), .nextSentence(let l), .sequenceClassification(let l), .tokenClassification(let l),
             .multipleChoice(let l): [("logits", l)]
        case .questionAnswering(let start, let end): [("start_logits", start), ("end_logits", end)]
        }
    }

    /// The next-sentence logits (B, 2), from a pre-training or next-sentence head.
    public var nextSentenceLogits: Tensor? {
        switch self {
        case .preTraining(_, let nsp), .nextSentence(let nsp): nsp
        default: nil
        }
    }

    /// The masked-LM logits (B, S, V), from a pre-training or masked-LM head.
    public var maskedLMLogits: Tensor? {
        switch self {
        case .preTraining(let mlm, _), .maskedLM(let mlm): mlm
        default: nil
        }
    }
}

/// The encoder's outputs of sequences packed end to end (`MegatronBERTModel.forwardPacked`).
public struct PackedOutputs: Sendable {
    /// (Σ lengths, H): sequence i's tokens are the rows `segments[i]`.
    public var lastHiddenState: Tensor
    /// Each sequence's rows.
    public var segments: [Range<Int>]
    /// (B, H), when the checkpoint has a pooler.
    public var poolerOutput: Tensor?
}

/// What `MegatronBERTModel.forwardPackedPooled` returns.
public struct PackedPooledOutputs: Sendable {
    /// (B, H): sequence i's last hidden states pooled (summed, maximum or first row).
    public var pooledRows: Tensor
    /// (B, H), when the checkpoint has a pooler.
    public var poolerOutput: Tensor?
}

/// What a forward pass produces: the encoder's output, the pooled output and the head's typed outputs.
///
/// ```swift
/// let outputs = try model.forward(batch)
/// if let logits = outputs.head?.maskedLMLogits { print(logits.shape) }  // [B, S, vocab]
/// ```
public struct ModelOutputs: Sendable {
    /// (B, S, H) — the encoder's output (after the final LayerNorm for Megatron-BERT).
    public var lastHiddenState: Tensor
    /// (B, H) — `tanh(dense(h[:, 0]))`, when the checkpoint has a pooler.
    public var poolerOutput: Tensor?
    /// The head's outputs (nil for a bare encoder, or when the head was not run).
    public var head: HeadOutput?

    /// The head's outputs under Hugging Face's names, in its order.
    public var headOutputs: [(name: String, tensor: Tensor)] { head?.named ?? [] }

    /// Every output by Hugging Face name, `last_hidden_state` and `pooler_output` first.
    public var all: [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = [("last_hidden_state", lastHiddenState)]
        if let poolerOutput { out.append(("pooler_output", poolerOutput)) }
        return out + headOutputs
    }

    /// The output with this Hugging Face name, if the model produces it.
    public subscript(name: String) -> Tensor? {
        all.first { $0.name == name }?.tensor
    }
}
