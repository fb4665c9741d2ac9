import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel

@Suite struct QuestionAnsweringTests {
    @Test func matchesTheWrittenOutPipeline() throws {
        let pipeline = try TaskFixtures.pipeline("qa")
        for item in try TaskFixtures.cases("qa") {
            let options = AnswerOptions(topK: item.int("top_k") ?? 1, maxAnswerLength: item.int("max_answer_len") ?? 15,
                                        docStride: item.int("doc_stride"), allowNoAnswer: item["handle_impossible_answer"] as? Bool ?? false)
            let ours = try pipeline.answer([(item.string("question"), item.string("context"))], options: options)[0]
            let reference = item.objects("answers")
            #expect(ours.map(\.answer) == reference.map { $0.string("answer") }, "\(item.string("question"))")
            #expect(ours.map(\.start) == reference.map { $0.int("start")! })
            #expect(ours.map(\.end) == reference.map { $0.int("end")! })
            for (a, b) in zip(ours, reference) { #expect(abs(a.score - b.double("score")) <= TaskFixtures.tolerance) }
        }
    }

    @Test func answersComeFromTheContextWithinTheLengthLimit() throws {
        let pipeline = try TaskFixtures.pipeline("qa")
        let context = "John Smith lives in New York and works at Google . Paris is the capital of France ."
        let answers = try pipeline.answer([("Who ?", context)], options: AnswerOptions(topK: 20, maxAnswerLength: 2))[0]
        #expect(answers.count == 20)
        for a in answers {
            #expect(a.answer == String(String.UnicodeScalarView(Array(context.unicodeScalars)[a.start..<a.end])))
            #expect(a.answer.split(separator: " ").count <= 2)
        }
    }

    @Test func explainsBadInput() throws {
        let pipeline = try TaskFixtures.pipeline("qa")
        #expect(throws: ModelError.self) { try pipeline.answer([("", "context")]) }
        let longQuestion = Array(repeating: "Who", count: 30).joined(separator: " ")
        #expect(throws: ModelError.self) { try pipeline.answer([(longQuestion, "Paris .")]) }
        #expect(throws: ModelError.self) { try pipeline.answer([("Who ?", "Paris .")], options: AnswerOptions(topK: 0)) }
    }
}
