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
        // The next-sentence head, where there is one, keeps its weights.
        return try maskedRun(nextSentence: false, train: { try sequences(train, lineByLine: lineByLine) },
                             eval: eval.map { eval in { try self.sequences(eval, lineByLine: lineByLine) } }, metrics: ["loss", "perplexity"],
                             output: output, tokenizerDirectory: tokenizerDirectory, resume: resume)
    }

    /// `run` for masked LM with next-sentence prediction, as BERT was pre-trained: a `…ForPreTraining` model on
    /// sentence pairs (`MaskedLMData.sentencePairs`, half of them with a random second part) made from `documents`
    /// (lists of sentences) with `options.seed`, each batch masked afresh; the loss the masked tokens' cross-entropy
    /// plus the next-sentence one, the pooler and next-sentence head training too. Evaluated (with `eval`, its pairs
    /// made from the seed as well) by `loss` (the sum, as `BertForPreTraining` gives it), `masked_lm_loss`,
    /// `perplexity` (e^masked_lm_loss), `next_sentence_loss` and `next_sentence_accuracy`.
    ///
    /// ```swift
    /// let summary = try trainer.run(sentencePairsFrom: try MaskedLMData.readDocuments("wiki.txt"), eval: nil,
    ///                               output: "./wiki-bert", tokenizerDirectory: dir)
    /// ```
    public func run(sentencePairsFrom train: [[String]], eval: [[String]]?, output: String, tokenizerDirectory: String?,
                    resume: Bool = false) throws -> Summary {
        guard model.head == .preTraining else {
            throw TrainingError("next-sentence prediction trains a pre-training checkpoint's next-sentence head (…ForPreTraining); this model is \(model.head.rawValue.dropFirst(3))")
        }
        return try maskedRun(nextSentence: true, train: { try sentencePairs(train, seed: options.seed) },
                             eval: eval.map { eval in { try self.sentencePairs(eval, seed: self.options.seed &+ 1) } },
                             metrics: ["loss", "perplexity", "next_sentence_accuracy"], output: output,
                             tokenizerDirectory: tokenizerDirectory, resume: resume)
    }

    /// What both masked-LM runs share: the masking from the options (each batch masked afresh), whether the
    /// next-sentence head trains, the held-out examples evaluated by `maskedEvaluation`, the shared loop.
    func maskedRun(nextSentence: Bool, train: () throws -> [Prepared], eval: (() throws -> [Prepared])?, metrics: Set<String>,
                   output: String, tokenizerDirectory: String?, resume: Bool) throws -> Summary {
        let masking = try self.languageMasking()
        self.masking = masking
        model.trainsNextSentence = nextSentence
        defer { self.masking = nil }
        let held = try eval.map { try $0() }
        return try run(examples: try train(), evaluate: held.map { held in { try self.maskedEvaluation(held, masking) } },
                       metrics: metrics, output: output, tokenizerDirectory: tokenizerDirectory, resume: resume)
    }

    func sentencePairs(_ documents: [[String]], seed: UInt64) throws -> [Prepared] {
        var random = SeededRandom(seed: seed)
        return try MaskedLMData.sentencePairs(documents, tokenizer: tokenizer, maxLength: maxLength, random: &random).map {
            Prepared(encoding: $0.encoding, targets: [$0.isRandomNext ? 1 : 0])
        }
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
    /// With next-sentence prediction also the next-sentence loss and accuracy, `loss` then their sum.
    func maskedEvaluation(_ examples: [Prepared], _ masking: MaskedLMMasking) throws -> [String: Double] {
        var lossSum = 0.0, nextSentenceLoss = 0.0, correct = 0
        let pairs = model.head == .preTraining && model.trainsNextSentence
        try evaluationBatches(examples, masking: masking) { indices, batch, logits, nextSentenceLogits, labels in
            lossSum += try objective(batch.targets)(logits).loss * Double(indices.count)
            guard pairs, let nextSentenceLogits else { return }
            nextSentenceLoss += try Loss.crossEntropy.evaluate(nextSentenceLogits, targets: labels).loss * Double(indices.count)
            for (row, label) in labels.enumerated() where (nextSentenceLogits[row * 2 + 1] > nextSentenceLogits[row * 2] ? 1 : 0) == Int(label) {
                correct += 1
            }
        }
        let n = Double(max(examples.count, 1)), loss = lossSum / n
        guard pairs else { return ["loss": loss, "perplexity": exp(loss)] }
        return ["loss": loss + nextSentenceLoss / n, "masked_lm_loss": loss, "perplexity": exp(loss),
                "next_sentence_loss": nextSentenceLoss / n, "next_sentence_accuracy": Double(correct) / n]
    }

    /// Loss and perplexity on held-out text.
    public func evaluation(texts: [String], lineByLine: Bool = false) throws -> [String: Double] {
        try maskedEvaluation(try sequences(texts, lineByLine: lineByLine), try languageMasking())
    }
}
