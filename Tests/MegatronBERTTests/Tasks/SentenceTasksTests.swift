import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel

/// Next sentence, classification and multiple choice: scores from the pooled output.
@Suite struct SentenceTasksTests {
    @Test func nextSentenceMatchesSoftmax() throws {
        let pipeline = try TaskFixtures.pipeline("pretraining")
        let cases = try TaskFixtures.cases("nsp")
        let ours = try pipeline.nextSentence(cases.map { ($0.string("text"), $0.string("text_pair")) })
        for (mine, item) in zip(ours, cases) {
            #expect(abs(mine.isNextProbability - item.doubles("probabilities")[0]) <= TaskFixtures.tolerance)
        }
    }

    @Test func classificationMatchesThePipeline() throws {
        for (task, model) in [("classify", "classification"), ("classify_multilabel", "multilabel")] {
            let pipeline = try TaskFixtures.pipeline(model)
            for item in try TaskFixtures.cases(task) {
                let ours = try pipeline.classify([(item.string("text"), item.optionalString("text_pair"))], topK: item.int("top_k"))[0]
                let reference = item.objects("labels")
                #expect(ours.map(\.label) == reference.map { $0.string("label") }, "\(task): \(item.string("text"))")
                for (a, b) in zip(ours, reference) { #expect(abs(a.score - b.double("score")) <= TaskFixtures.tolerance) }
            }
        }
        let multi = try TaskFixtures.pipeline("multilabel").classify([("France", nil)], topK: nil)[0]
        #expect(multi.map(\.score).reduce(0, +) > 1.5, "sigmoid scores do not sum to 1")
    }

    @Test func multipleChoiceMatchesSoftmax() throws {
        let pipeline = try TaskFixtures.pipeline("multiple-choice")
        for item in try TaskFixtures.cases("multiple_choice") {
            let choices = item["choices"] as! [String]
            let ours = try pipeline.multipleChoice(prompt: item.string("prompt"), choices: choices)
            let probabilities = item.doubles("probabilities"), logits = item.doubles("logits")
            #expect(ours.map(\.score) == ours.map(\.score).sorted(by: >))
            for choice in ours {
                #expect(choices[choice.index] == choice.choice)
                #expect(abs(choice.score - probabilities[choice.index]) <= TaskFixtures.tolerance)
                #expect(abs(choice.logit - logits[choice.index]) <= TaskFixtures.tolerance)
            }
        }
    }

    @Test func wrongHeadsAreNamed() throws {
        let embedding = try TaskFixtures.pipeline("embedding")
        #expect(throws: ModelError.self) { try embedding.nextSentence([("a", "b")]) }
        #expect(throws: ModelError.self) { try embedding.classify([("a", nil)]) }
        #expect(throws: ModelError.self) { try embedding.multipleChoice(prompt: "a", choices: ["b"]) }
        #expect(throws: ModelError.self) { try embedding.entities(["a"]) }
        #expect(throws: ModelError.self) { try embedding.answer([("a", "b")]) }
        #expect(throws: ModelError.self) { try TaskFixtures.pipeline("multiple-choice").multipleChoice(prompt: "a", choices: []) }
    }
}
