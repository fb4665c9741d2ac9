import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel

@Suite struct TokenClassificationTests {
    @Test(arguments: Aggregation.allCases)
    func matchesThePipeline(_ aggregation: Aggregation) throws {
        let pipeline = try TaskFixtures.pipeline("ner")
        let cases = try TaskFixtures.cases("ner").filter { $0.string("aggregation") == aggregation.rawValue }
        #expect(!cases.isEmpty || aggregation == .average)
        for item in cases {
            let ours = try pipeline.entities([item.string("text")], aggregation: aggregation, stride: item.int("stride"))[0]
            let reference = item.objects("entities")
            let label = "\(aggregation) \(item.string("text").prefix(30))"
            #expect(ours.map(\.word) == reference.map { $0.string("word") }, "\(label)")
            #expect(ours.map(\.start) == reference.map { $0.int("start")! }, "\(label)")
            #expect(ours.map(\.end) == reference.map { $0.int("end")! }, "\(label)")
            #expect(ours.map { $0.entity ?? $0.entityGroup! } == reference.map { $0.optionalString("entity") ?? $0.string("entity_group") })
            #expect(ours.map(\.index) == reference.map { $0.int("index") })
            for (a, b) in zip(ours, reference) { #expect(abs(a.score - b.double("score")) <= TaskFixtures.tolerance) }
        }
    }

    @Test func ignoredLabelsMustBeTheModels() throws {
        let pipeline = try TaskFixtures.pipeline("ner")
        let all = try pipeline.entities(["John Smith lives in New York ."], aggregation: .none, ignoreLabels: [])[0]
        #expect(all.count == 7, "every token, O included")
        let noPeople = try pipeline.entities(["John Smith lives in New York ."], aggregation: .none, ignoreLabels: ["O", "B-PER", "I-PER"])[0]
        #expect(noPeople.allSatisfy { !["O", "B-PER", "I-PER"].contains($0.entity!) })
        do {
            _ = try pipeline.entities(["John"], ignoreLabels: ["PERSON"])
            Issue.record("an unknown label is an error")
        } catch let error as ModelError {
            #expect(error.message.contains("unknown label \"PERSON\""), "\(error.message)")
            #expect(error.message.contains("O, B-PER, I-PER, B-LOC, I-LOC, B-ORG, I-ORG"))
        }
    }

    @Test func longTextsUseWindows() throws {
        let pipeline = try TaskFixtures.pipeline("ner")
        let text = Array(repeating: "John Smith lives in New York .", count: 8).joined(separator: " ")
        let entities = try pipeline.entities([text], aggregation: .first, ignoreLabels: [])[0]
        #expect(entities.last!.end == text.unicodeScalars.count, "the last word is labelled")
        #expect(zip(entities, entities.dropFirst()).allSatisfy { $0.end <= $1.start }, "no overlaps after merging")
    }
}
