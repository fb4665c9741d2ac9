import MegatronBackend

/// `cls.predictions` (`…LMPredictionHead`) as a forward/backward pair: dense → activation → LayerNorm → decoder, the
/// decoder's weight the word embeddings' Parameter when the config ties them (its gradient then adds to theirs) and its
/// bias `cls.predictions.bias`. It runs only on the rows that carry a label (the masked tokens): the other rows'
/// logits would have no gradient.
/// Shapes: x (M, H) → logits (M, V).
struct PredictionHead {
    let dense: Linear  // transform.dense (H, H)
    let activation: Activation
    let norm: LayerNorm  // transform.LayerNorm
    let decoder: Linear  // (V, H)

    struct Saved {
        var input: Tensor  // (M, H)
        var preActivation: Tensor  // (M, H)
        var activated: Tensor  // (M, H): the LayerNorm's input
        var norm: LayerNorm.Saved
        var normed: Tensor  // (M, H): the decoder's input
    }

    func forward(_ x: Tensor, _ products: any MatrixProducts) -> (logits: Tensor, saved: Saved) {
        let preActivation = dense.forward(x, products)
        let activated = Activations.forward(preActivation, activation)
        let (normed, normSaved) = norm.forward(activated)
        return (decoder.forward(normed, products), Saved(input: x, preActivation: preActivation, activated: activated, norm: normSaved,
                                                         normed: normed))
    }

    /// dLogits (M, V) → dx (M, H), every gradient (the decoder's into the word embeddings when tied) added to.
    func backward(_ dLogits: Tensor, saved: Saved, _ products: any MatrixProducts) -> Tensor {
        let dNormed = decoder.backward(dLogits, input: saved.normed, products)
        let dActivated = norm.backward(dNormed, input: saved.activated, saved: saved.norm)
        return dense.backward(Activations.backward(dActivated, input: saved.preActivation, activation), input: saved.input, products)
    }

    /// The rows `positions` of x (N, H), as (M, H).
    static func gather(_ x: Tensor, rows positions: [Int]) -> Tensor {
        let h = x.count / max(x.shape[0], 1)
        let rows = Tensor(uninitializedShape: [positions.count, h])
        for (i, position) in positions.enumerated() { (rows.data + i * h).update(from: x.data + position * h, count: h) }
        return rows
    }

    /// dRows (M, H) placed at rows `positions` of a zero (N, H).
    static func scatter(_ dRows: Tensor, rows positions: [Int], count n: Int) -> Tensor {
        let h = dRows.count / max(positions.count, 1)
        let dx = Tensor(shape: [n, h])
        for (i, position) in positions.enumerated() {
            let to = dx.data + position * h, from = dRows.data + i * h
            for j in 0..<h { to[j] += from[j] }
        }
        return dx
    }
}
