import Foundation
import BERTTokenizer

/// Runs rows through a model, batched as it sees fit, and gives one output per row, in the rows' order. The
/// tasks hand their rows to an executor: the command line's runs them in length-sorted batches
/// (`SortedBatchExecutor`); a server feeds one from a queue of many requests' rows; a distributed worker from its
/// standard input.
///
/// ```swift
/// let executor = SortedBatchExecutor(model: model, tokenizer: tokenizer, batchSize: 8)
/// let outputs = try executor.run([ModelRow(try tokenizer.encode("Hello"))], work: .encoder)
/// print(outputs[0].hidden?.count ?? 0)  // tokens × hidden_size
/// ```
public protocol BatchExecutor: Sendable {
    var model: MegatronBERTModel { get }
    func run(_ rows: [ModelRow], work: RowWork) throws -> [RowOutput]
}

/// Rows sorted by length (shortest first, ties in input order), `batchSize` at a time, each batch padded to its own
/// longest row — so batches of similar lengths spend little on padding. Multiple-choice rows batch with rows of the
/// same number of choices. The encoder's work (embeddings) on a backend that packs sequences runs without padding
/// instead: the sorted rows end to end, up to `packedTokens` tokens per forward pass.
public struct SortedBatchExecutor: BatchExecutor {
    public let model: MegatronBERTModel
    /// Pads the batches.
    public let tokenizer: BERTTokenizer
    /// Rows per forward pass (examples, for multiple choice).
    public let batchSize: Int
    /// Tokens per forward pass of packed rows (a longer row runs alone): the backend's `packedTokensPerPass` (2,048
    /// on the CPU).
    public var packedTokens: Int { model.backend.capabilities.packedTokensPerPass }

    /// An executor of `model`, padding with `tokenizer`, `batchSize` rows per forward pass.
    public init(model: MegatronBERTModel, tokenizer: BERTTokenizer, batchSize: Int) {
        self.model = model
        self.tokenizer = tokenizer
        self.batchSize = max(1, batchSize)
    }

    /// The batches `run` makes: row indices per batch, in the order they run.
    public func batches(_ rows: [ModelRow]) -> [[Int]] {
        let order = rows.indices.sorted { (rows[$0].encodings.count, rows[$0].length, $0) < (rows[$1].encodings.count, rows[$1].length, $1) }
        var batches: [[Int]] = []
        var current: [Int] = []
        for index in order {
            if current.count == batchSize || (current.first.map { rows[$0].encodings.count != rows[index].encodings.count } ?? false) {
                batches.append(current)
                current = []
            }
            current.append(index)
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// The packed forward passes `run` makes of the encoder's work: row indices per pass, shortest rows first, at
    /// most `packedTokens` tokens in a pass; nil when the rows cannot be packed (a backend without packed attention,
    /// several encodings per row, or an encoding with padding of its own).
    public func packedPasses(_ rows: [ModelRow]) -> [[Int]]? {
        guard model.runsPackedSequences,
              rows.allSatisfy({ $0.encodings.count == 1 && !$0.encodings[0].attentionMask.contains(0) }) else { return nil }
        let order = rows.indices.sorted { (rows[$0].length, $0) < (rows[$1].length, $1) }
        var passes: [[Int]] = [], current: [Int] = [], tokens = 0
        for index in order {
            if !current.isEmpty && tokens + rows[index].length > packedTokens {
                passes.append(current)
                current = []
                tokens = 0
            }
            current.append(index)
            tokens += rows[index].length
        }
        if !current.isEmpty { passes.append(current) }
        return passes
    }

    /// The padded model input of one batch of rows.
    public func batch(_ rows: [ModelRow]) -> Batch {
        let encodings = tokenizer.pad(rows.flatMap(\.encodings))
        let choices = rows.first.map(\.encodings.count) ?? 1
        return Batch(inputIDs: encodings.map(\.ids), attentionMask: encodings.map(\.attentionMask),
                     tokenTypeIDs: encodings.map(\.typeIDs), numChoices: model.head == .multipleChoice ? choices : nil)
    }

    /// Runs the rows in length-sorted batches; outputs in the rows' order.
    public func run(_ rows: [ModelRow], work: RowWork) throws -> [RowOutput] {
        if case .pooledEncoder(let pooling) = work { return try runPooled(rows, pooling) }
        var outputs = [RowOutput](repeating: RowOutput(), count: rows.count)
        if work == .encoder, let passes = packedPasses(rows) {
            let h = model.config.hiddenSize
            for indices in passes {
                let encodings = indices.map { rows[$0].encodings[0] }
                let result = try model.forwardPacked(ids: encodings.map(\.ids), types: encodings.map(\.typeIDs))
                // Each sequence's rows of the packed (N, H) copied out on every core (a GPU pass brings back ~64 MB).
                let hidden = System.concurrentMap(indices.count) { i in
                    let rows = result.segments[i]  // (tokens, H) of the packed (N, H)
                    return Array(UnsafeBufferPointer(start: result.lastHiddenState.data + rows.lowerBound * h, count: rows.count * h))
                }
                for (i, index) in indices.enumerated() {
                    outputs[index].hidden = hidden[i]
                    outputs[index].pooled = result.poolerOutput.map { Array(UnsafeBufferPointer(start: $0.data + i * h, count: h)) }
                }
            }
            return outputs
        }
        for indices in batches(rows) {
            let members = indices.map { rows[$0] }
            let batch = batch(members)
            let s = batch.inputIDs.first?.count ?? 0
            switch work {
            case .maskedPositions:
                let positions = members.enumerated().flatMap { b, row in row.maskedPositions.map { (row: b, position: $0) } }
                let logits = try model.maskedLMLogits(batch, at: positions)  // (masks in the batch, V)
                let v = logits.shape[1]
                var offset = 0
                for (b, index) in indices.enumerated() {
                    let n = members[b].maskedPositions.count
                    outputs[index].head = .maskedLM(logits: Array(UnsafeBufferPointer(start: logits.data + offset * v, count: n * v)),
                                                    vocabulary: v)
                    offset += n
                }
            case .encoder, .pooledEncoder:  // (pooledEncoder pools these rows in runPooled)
                let result = try model.forward(batch, runHead: false)
                let h = model.config.hiddenSize
                for (b, index) in indices.enumerated() {
                    let tokens = members[b].encodings[0].count
                    outputs[index].hidden = Array(UnsafeBufferPointer(start: result.lastHiddenState.data + b * s * h, count: tokens * h))
                    outputs[index].pooled = result.poolerOutput.map { Array(UnsafeBufferPointer(start: $0.data + b * h, count: h)) }
                }
            case .head:
                guard let head = try model.forward(batch).head else {
                    throw ModelError(.unsupported, "this model (MegatronBert\(model.head.rawValue)) has no task head to run")
                }
                for (b, index) in indices.enumerated() {
                    outputs[index].head = Self.slice(head, row: b, sequence: s, tokens: members[b].encodings[0].count)
                }
            }
        }
        return outputs
    }

    /// `RowWork.pooledEncoder`: packed passes pooled on the backend where it pools (one vector per row comes back);
    /// else the encoder's rows, pooled here on every core.
    private func runPooled(_ rows: [ModelRow], _ pooling: SegmentPooling) throws -> [RowOutput] {
        let h = model.config.hiddenSize
        if model.backend.capabilities.poolsSegments, let passes = packedPasses(rows) {
            var outputs = [RowOutput](repeating: RowOutput(), count: rows.count)
            for indices in passes {
                let encodings = indices.map { rows[$0].encodings[0] }
                let result = try model.forwardPackedPooled(ids: encodings.map(\.ids), types: encodings.map(\.typeIDs), pooling: pooling)
                for (i, index) in indices.enumerated() {  // (B, H) each
                    outputs[index].pooledRow = Array(UnsafeBufferPointer(start: result.pooledRows.data + i * h, count: h))
                    outputs[index].pooled = result.poolerOutput.map { Array(UnsafeBufferPointer(start: $0.data + i * h, count: h)) }
                }
            }
            return outputs
        }
        var outputs = try run(rows, work: .encoder)
        let pooled = System.concurrentMap(outputs.count) { i in outputs[i].hidden.map { Self.pool($0, width: h, pooling) } }
        for i in outputs.indices {
            outputs[i].pooledRow = pooled[i]
            outputs[i].hidden = nil
        }
        return outputs
    }

    /// A row's (tokens, H) hidden states pooled to (H) on the host, as `Backend.poolSegments` does (sums in
    /// float64).
    static func pool(_ hidden: [Float], width h: Int, _ pooling: SegmentPooling) -> [Float] {
        let tokens = hidden.count / max(h, 1)
        guard tokens > 0 else { return [Float](repeating: 0, count: h) }
        return [Float](unsafeUninitializedCapacity: h) { out, initialized in
            hidden.withUnsafeBufferPointer { pooling.pool($0.baseAddress!, rows: tokens, width: h, into: out.baseAddress!) }
            initialized = h
        }
    }

    /// Row `b`'s part of a batch's head outputs, without padding.
    static func slice(_ head: HeadOutput, row b: Int, sequence s: Int, tokens: Int) -> RowHead {
        func rows(_ t: Tensor, _ width: Int, from: Int, count: Int) -> [Float] {
            Array(UnsafeBufferPointer(start: t.data + from * width, count: count * width))
        }
        switch head {
        case .preTraining(_, let nsp), .nextSentence(let nsp):
            return .nextSentence(logits: rows(nsp, 2, from: b, count: 1))
        case .maskedLM(let logits):
            let v = logits.shape[2]
            return .maskedLM(logits: rows(logits, v, from: b * s, count: tokens), vocabulary: v)
        case .sequenceClassification(let logits):
            return .sequenceClassification(logits: rows(logits, logits.shape[1], from: b, count: 1))
        case .tokenClassification(let logits):
            let labels = logits.shape[2]
            return .tokenClassification(logits: rows(logits, labels, from: b * s, count: tokens), labels: labels)
        case .questionAnswering(let start, let end):
            return .questionAnswering(start: rows(start, 1, from: b * s, count: tokens), end: rows(end, 1, from: b * s, count: tokens))
        case .multipleChoice(let logits):
            return .multipleChoice(logits: rows(logits, logits.shape[1], from: b, count: 1))
        }
    }
}
