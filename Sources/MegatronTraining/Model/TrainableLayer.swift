import MegatronBackend

/// One encoder layer as a forward/backward pair, either architecture:
/// Megatron-BERT (pre-LayerNorm): x1 = x + drop(Wo·Attn(LN_a(x))), x2 = x1 + drop(W2·act(W1·LN_m(x1)));
/// BERT (post-LayerNorm): x1 = LN_a(x + drop(Wo·Attn(x))), x2 = LN_m(x1 + drop(W2·act(W1·x1))).
/// Shapes: x (B·S, H) → (B·S, H); the intermediate (B·S, F). With `firstOnly` (a sequence classifier's last layer,
/// of whose output the pooler reads only the first token's row) the keys and values are every token's, and
/// everything after them — the query, attention, the output product, the MLP, the LayerNorms after attention — the
/// first token's only: x (B·S, H) → (B, H), about three quarters of the layer's products left out both ways.
struct TrainableLayer {
    let preLayerNorm: Bool
    let query: Linear, key: Linear, value: Linear  // (H, H) each
    var attention: Attention
    let attentionOutput: Linear  // (H, H)
    let attentionNorm: LayerNorm  // attention.ln (Megatron) or attention.output.LayerNorm (BERT)
    let intermediate: Linear  // (F, H)
    let output: Linear  // (H, F)
    let mlpNorm: LayerNorm  // ln (Megatron) or output.LayerNorm (BERT)
    let activation: Activation
    var hiddenDropout: Dropout

    /// The same layer with no dropout (evaluation).
    var withoutDropout: TrainableLayer {
        var layer = self
        layer.attention = Attention(heads: attention.heads, dropout: Dropout(probability: 0))
        layer.hiddenDropout = Dropout(probability: 0)
        return layer
    }

    /// The activations the backward pass reads.
    struct Saved {
        var input: Tensor  // x (N, H)
        var attentionInput: Tensor  // LN_a(x) (Megatron) or x (BERT)
        var attentionNorm: LayerNorm.Saved
        var attentionInputs: Attention.Inputs  // Q | K | V (N, 3H), or Q (B, H) and K | V (N, 2H) with firstOnly
        var attention: Attention.Saved
        var context: Tensor  // (N, H)
        var attentionMask: DropoutMask?
        var residual1: Tensor  // Megatron: x1; BERT: x + attention output, before LN_a (M, H), M = N or B
        var mlpInput: Tensor  // LN_m(x1) (Megatron) or x1 (BERT)
        var mlpNorm: LayerNorm.Saved
        var activationDerivative: Tensor  // act′ at the FFN's pre-activation (N, F)
        var activated: Tensor  // (N, F)
        var outputMask: DropoutMask?
        var residual2: Tensor  // BERT: x1 + MLP output, before LN_m
    }

    func forward(_ x: Tensor, batch b: Int, sequence s: Int, keep: [[Float]], firstOnly: Bool = false,
                 _ random: inout SeededRandom, _ products: any MatrixProducts) -> (Tensor, Saved) {
        var attentionNormSaved = LayerNorm.Saved(mean: [], inverseDeviation: [])  // both architectures set it below
        let attentionInput: Tensor
        if preLayerNorm {
            let (normed, saved) = attentionNorm.forward(x)
            attentionInput = normed
            attentionNormSaved = saved
        } else {
            attentionInput = x
        }
        let attentionInputs: Attention.Inputs
        if firstOnly {
            attentionInputs = .firstQueries(query.forward(Self.firstRows(attentionInput, sequence: s), products),  // (B, H)
                                            keysValues: StackedLinear(parts: [key, value]).forward(attentionInput, products))  // (N, 2H)
        } else {
            attentionInputs = .stacked(StackedLinear(parts: [query, key, value]).forward(attentionInput, products), sequence: s)  // (N, 3H)
        }
        let (context, attentionSaved) = attention.forward(attentionInputs, batch: b, sequence: s, keep: keep, &random, products)
        let attended = attentionOutput.forward(context, products)  // (M, H)
        let attentionMask = hiddenDropout.mask(count: attended.count, &random)
        Dropout.apply(attentionMask, to: attended)
        let residual1 = Self.sum(firstOnly ? Self.firstRows(x, sequence: s) : x, attended)
        let x1: Tensor, mlpInput: Tensor
        var mlpNormSaved = LayerNorm.Saved(mean: [], inverseDeviation: [])
        if preLayerNorm {
            x1 = residual1
            let (normed, saved) = mlpNorm.forward(x1)
            mlpInput = normed
            mlpNormSaved = saved
        } else {
            let (normed, saved) = attentionNorm.forward(residual1)
            x1 = normed
            attentionNormSaved = saved
            mlpInput = x1
        }
        let (activated, activationDerivative) = Activations.forwardWithDerivative(intermediate.forward(mlpInput, products), activation)
        let out = output.forward(activated, products)
        let outputMask = hiddenDropout.mask(count: out.count, &random)
        Dropout.apply(outputMask, to: out)
        let residual2 = Self.sum(x1, out)
        var y = residual2
        if !preLayerNorm {
            let (normed, saved) = mlpNorm.forward(residual2)
            y = normed
            mlpNormSaved = saved
        }
        return (y, Saved(input: x, attentionInput: attentionInput, attentionNorm: attentionNormSaved, attentionInputs: attentionInputs,
                         attention: attentionSaved, context: context, attentionMask: attentionMask, residual1: residual1,
                         mlpInput: mlpInput, mlpNorm: mlpNormSaved, activationDerivative: activationDerivative, activated: activated,
                         outputMask: outputMask, residual2: residual2))
    }

    /// dy (M, H) → dx (B·S, H), every parameter's gradient added to; M = B·S, or B when the forward pass was
    /// `firstOnly`.
    func backward(_ dy: Tensor, saved: Saved, batch b: Int, sequence s: Int, _ products: any MatrixProducts) -> Tensor {
        // The MLP block: dResidual2 → dx1.
        let dResidual2 = preLayerNorm ? dy : mlpNorm.backward(dy, input: saved.residual2, saved: saved.mlpNorm)
        let dOut = Self.copy(dResidual2)
        Dropout.apply(saved.outputMask, to: dOut)
        let dActivated = output.backward(dOut, input: saved.activated, products)
        let dPre = Activations.backward(dActivated, derivative: saved.activationDerivative)
        let dMLPInput = intermediate.backward(dPre, input: saved.mlpInput, products)
        let dx1: Tensor
        if preLayerNorm {
            dx1 = Self.sum(dResidual2, mlpNorm.backward(dMLPInput, input: saved.residual1, saved: saved.mlpNorm))
        } else {
            dx1 = Self.sum(dResidual2, dMLPInput)
        }
        // The attention block: dx1 → dx.
        let dResidual1 = preLayerNorm ? dx1 : attentionNorm.backward(dx1, input: saved.residual1, saved: saved.attentionNorm)
        let dAttended = Self.copy(dResidual1)
        Dropout.apply(saved.attentionMask, to: dAttended)
        let dContext = attentionOutput.backward(dAttended, input: saved.context, products)
        let inputs = saved.attentionInputs
        let (dQueries, dKeysValues) = attention.backward(dContext, inputs: inputs, batch: b, sequence: s, saved: saved.attention,
                                                         products)
        var dAttentionInput: Tensor  // (N, H)
        if inputs.queries === inputs.keysValues {  // Q | K | V stacked (every token's query)
            dAttentionInput = StackedLinear(parts: [query, key, value]).backward(dKeysValues, input: saved.attentionInput, products)
        } else {
            dAttentionInput = StackedLinear(parts: [key, value]).backward(dKeysValues, input: saved.attentionInput, products)
            let dFirst = query.backward(dQueries, input: Self.firstRows(saved.attentionInput, sequence: s), products)
            Self.addFirstRows(dFirst, into: dAttentionInput, sequence: s)
        }
        if preLayerNorm {
            dAttentionInput = attentionNorm.backward(dAttentionInput, input: saved.input, saved: saved.attentionNorm)
        }
        if dResidual1.count == dAttentionInput.count { return Self.sum(dResidual1, dAttentionInput) }
        Self.addFirstRows(dResidual1, into: dAttentionInput, sequence: s)
        return dAttentionInput
    }

    /// The first row of each sequence of x (B·S, H): (B, H).
    static func firstRows(_ x: Tensor, sequence s: Int) -> Tensor {
        let h = x.shape[1], b = x.shape[0] / s
        let out = Tensor(uninitializedShape: [b, h])
        for row in 0..<b { (out.data + row * h).update(from: x.data + row * s * h, count: h) }
        return out
    }

    /// Adds rows (B, H) to the first row of each sequence of x (B·S, H).
    static func addFirstRows(_ rows: Tensor, into x: Tensor, sequence s: Int) {
        let h = x.shape[1]
        for row in 0..<rows.shape[0] {
            let target = x.data + row * s * h, source = rows.data + row * h
            for j in 0..<h { target[j] += source[j] }
        }
    }

    /// A copy of x.
    static func copy(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape)
        out.data.update(from: x.data, count: x.count)
        return out
    }

    /// a + b, a new tensor of a's shape.
    static func sum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: a.shape)
        inChunks(a.count) { range in for i in range { out.data[i] = a.data[i] + b.data[i] } }
        return out
    }
}
