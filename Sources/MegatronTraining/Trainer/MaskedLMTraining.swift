import BERTTokenizer
import Foundation
import MegatronBackend

extension ClassificationTrainer {
    /// `run` for continued masked-LM pre-training, as transformers' `run_mlm` trains: a `…ForMaskedLM` (or
    /// `…ForPreTraining`, its next-sentence head kept as it is) model on `texts` cut into sequences
    /// (`MaskedLMData.sequences`), each batch masked afresh (`MaskedLMMasking` with `options.mlmProbability` and
    /// `options.wholeWordMask`) from the run's seeded generator, the loss
    /// cross-entropy at the masked tokens; evaluated (with `eval`) by `loss` and `perplexity` (e^loss) on masks drawn
    /// from `options.seed` (the same masks at every evaluation).
    ///
    /// ```swift
    /// let trainer = try ClassificationTrainer(model: mlmModel, tokenizer: tokenizer, labels: .languageModel, options: options)
    /// let summary = try trainer.run(texts: try MaskedLMData.read("domain.txt"), eval: held, output: "./domain-bert",
    ///                               tokenizerDirectory: dir)
    /// ```
    public func run(texts train: [String], eval: [String]?, lineByLine: Bool = false, output: String,
                    tokenizerDirectory: String?, resume: Bool = false) throws -> Summary {
        guard model.predictions != nil else { throw TrainingError("text trains a masked-LM or pre-training model; this model has another head") }
        let masking = try self.languageMasking()
        self.masking = masking
        model.trainsNextSentence = false  // the next-sentence head, where there is one, keeps its weights
        defer { self.masking = nil }
        let held = try eval.map { try sequences($0, lineByLine: lineByLine) }
        return try run(examples: try sequences(train, lineByLine: lineByLine), evaluate: held.map { held in { try self.maskedEvaluation(held, masking) } },
                       output: output, tokenizerDirectory: tokenizerDirectory, resume: resume)
    }

    /// The masking `options` ask for, with this tokenizer's [MASK] and vocabulary.
    func languageMasking() throws -> MaskedLMMasking {
        guard let maskID = tokenizer.maskTokenID else { throw TrainingError("the tokenizer has no [MASK] token: masked-LM training needs one") }
        return MaskedLMMasking(maskID: maskID, vocabularySize: tokenizer.vocabulary.count, probability: options.mlmProbability,
                               wholeWords: options.wholeWordMask)
    }

    func sequences(_ texts: [String], lineByLine: Bool) throws -> [Prepared] {
        try MaskedLMData.sequences(texts, tokenizer: tokenizer, maxLength: maxLength, lineByLine: lineByLine).map {
            Prepared(encoding: $0, targets: [])
        }
    }

    /// The batch with `masking` applied: its ids masked, the targets (B·S) and the masked tokens' positions.
    func masked(_ batch: (ids: [[Int]], types: [[Int]], mask: [[Int]], targets: [Double]), _ examples: [Prepared], _ indices: ArraySlice<Int>,
                _ masking: MaskedLMMasking, _ random: inout SeededRandom) -> ((ids: [[Int]], types: [[Int]], mask: [[Int]], targets: [Double]), [Int]) {
        let s = batch.ids.first?.count ?? 0
        let encodings = indices.map { examples[$0].encoding }
        // Never chosen, as the collator's `get_special_tokens_mask(already_has_special_tokens=True)`: every special id
        // ([CLS], [SEP], [UNK], [PAD], [MASK], special added tokens), and padding.
        let specialIDs = tokenizer.specialTokenIDs
        let special = encodings.map { e in e.ids.map { specialIDs.contains($0) } + [Bool](repeating: true, count: s - e.count) }
        let words = encodings.map { e in e.wordIDs + [Int?](repeating: nil, count: s - e.count) }
        var ids = batch.ids
        let targets = masking.apply(to: &ids, special: special, words: words, lengths: encodings.map(\.count), &random)
        return ((ids, batch.types, batch.mask, targets), targets.indices.filter { targets[$0] != -100 })
    }

    /// The loss at masked tokens (each batch's mean, weighted by its sequences, as the Trainer's evaluation averages)
    /// and its perplexity, dropout off, masks drawn from `options.seed`.
    func maskedEvaluation(_ examples: [Prepared], _ masking: MaskedLMMasking) throws -> [String: Double] {
        var lossSum = 0.0
        try evaluationBatches(examples, masking: masking) { indices, batch, logits in
            lossSum += try objective(batch.targets)(logits).loss * Double(indices.count)
        }
        let loss = lossSum / Double(max(examples.count, 1))
        return ["loss": loss, "perplexity": exp(loss)]
    }

    /// Loss and perplexity on held-out text.
    public func evaluation(texts: [String], lineByLine: Bool = false) throws -> [String: Double] {
        try maskedEvaluation(try sequences(texts, lineByLine: lineByLine), try languageMasking())
    }
}
