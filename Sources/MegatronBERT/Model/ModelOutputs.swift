/// What a forward pass produces, under Hugging Face's output names and shapes.
///
/// ```swift
/// let outputs = try model.forward(batch)
/// if let logits = outputs["prediction_logits"] { print(logits.shape) }  // [B, S, vocab]
/// ```
public struct ModelOutputs: Sendable {
    /// (B, S, H) — the encoder's output (after the final LayerNorm for Megatron-BERT).
    public var lastHiddenState: Tensor
    /// (B, H) — `tanh(dense(h[:, 0]))`, when the checkpoint has a pooler.
    public var poolerOutput: Tensor?
    /// The head's outputs in HF's order: e.g. `prediction_logits` (B, S, V) and `seq_relationship_logits` (B, 2)
    /// for pre-training; `logits`; `start_logits`, `end_logits` (B, S).
    public var headOutputs: [(name: String, tensor: Tensor)]

    /// Every output by name, `last_hidden_state` and `pooler_output` first.
    public var all: [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = [("last_hidden_state", lastHiddenState)]
        if let poolerOutput { out.append(("pooler_output", poolerOutput)) }
        return out + headOutputs
    }

    /// The output with this HF name, if the model produces it.
    public subscript(name: String) -> Tensor? {
        all.first { $0.name == name }?.tensor
    }
}
