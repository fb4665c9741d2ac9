import TensorFiles

/// What a model of a config takes in memory, estimated from its shape before anything is allocated, so sizes
/// from a file or a flag (a config with 10⁹ layers, `--batch-size 2⁶³−1`, a 100k-row batch) are refused with
/// the numbers instead of aborting on an allocation. Every product is overflow-checked: nil means "absurd".
extension BertConfig {
    /// Bytes of the weights kept in `dtype` (matrices in `dtype`, but embedding tables in `dtype.storage`, vectors
    /// in FP32).
    public func weightBytes(dtype: DType) -> Int? {
        let h = hiddenSize, f = intermediateSize
        guard let perLayer = sum([product([4, h, h]), product([2, h, f])]),
              let layersBytes = product([numHiddenLayers, perLayer, dtype.size]),
              let tables = product([sum([vocabSize, maxPositionEmbeddings, typeVocabSize]) ?? -1, h, dtype.storage.size]),
              let vectors = product([numHiddenLayers, sum([product([9, h]), f]) ?? -1, 4]),
              let heads = product([sum([product([h, h]), vocabSize, product([h, max(numLabels, 2)])]) ?? -1, dtype.size])
        else { return nil }
        return sum([layersBytes, tables, vectors, heads])
    }

    /// Bytes one forward pass over `rows` sequences of `sequence` tokens allocates: activations (the hidden state,
    /// Q, K, V, context, the feed-forward block) and the head's outputs (MLM logits: one row of vocab_size per
    /// token), all FP32.
    public func forwardBytes(rows: Int, sequence: Int, head: ModelHead) -> Int? {
        let perToken: Int?
        switch head {
        case .preTraining, .maskedLM: perToken = sum([product([11, hiddenSize]), intermediateSize, vocabSize])
        case .tokenClassification: perToken = sum([product([10, hiddenSize]), intermediateSize, numLabels])
        default: perToken = sum([product([10, hiddenSize]), intermediateSize, 2])
        }
        guard let perToken, let tokens = product([rows, sequence]), let bytes = product([tokens, perToken, 4]),
              let pooled = product([rows, hiddenSize, 8]) else { return nil }
        return sum([bytes, pooled])
    }

    private func product(_ values: [Int]) -> Int? {
        var result = 1
        for v in values {
            guard v >= 0 else { return nil }
            let (r, overflow) = result.multipliedReportingOverflow(by: v)
            guard !overflow else { return nil }
            result = r
        }
        return result
    }

    private func sum(_ values: [Int?]) -> Int? {
        var result = 0
        for v in values {
            guard let v, v >= 0 else { return nil }
            let (r, overflow) = result.addingReportingOverflow(v)
            guard !overflow else { return nil }
            result = r
        }
        return result
    }
}

extension MegatronBERTModel {
    /// Throws unless a forward pass over `rows` × `sequence` tokens fits in the memory left, saying how much it
    /// needs, how much there is, and how many sequences at a time would fit.
    public func checkMemory(rows: Int, sequence: Int) throws {
        let reserved = config.weightBytes(dtype: dtype) ?? 0
        let available = MemoryBudget.available(reserved: reserved)
        let needed = config.forwardBytes(rows: rows, sequence: sequence, head: head)
        guard let needed, needed <= available else {
            let perRow = config.forwardBytes(rows: 1, sequence: sequence, head: head) ?? Int.max
            let fit = perRow > 0 ? available / perRow : 0
            throw ModelError(.resource, "a batch of \(rows) sequences of \(sequence) tokens needs about \(needed.map(MemoryBudget.describe) ?? "more memory than can be counted") beyond the weights, but only \(MemoryBudget.describe(available)) of this machine's \(MemoryBudget.describe(MemoryBudget.bytes)) is free: " + (fit >= 1 ? "run at most \(fit) sequences of that length at a time" : "shorten the sequences"))
        }
    }
}
