import Foundation
import Testing
import MegatronBERT
@testable import MegatronModel

@Suite struct SentenceEmbeddingsTests {
    @Test(arguments: Pooling.allCases)
    func matchesTheReference(_ pooling: Pooling) throws {
        let pipeline = try TaskFixtures.pipeline("embedding", batchSize: 2)
        let cases = try TaskFixtures.cases("embed")
        let ours = try pipeline.embed(cases.map { $0.string("text") }, pooling: pooling, stride: 4)
        #expect(cases.contains { $0.int("windows")! > 1 }, "one text needs several windows")
        for (vector, item) in zip(ours, cases) {
            let reference = item.doubles(pooling.rawValue)
            #expect(vector.count == reference.count)
            let worst = zip(vector, reference).map { abs(Double($0) - $1) }.max()!
            #expect(worst <= TaskFixtures.tolerance, "\(pooling) \(item.string("text").prefix(20)): max |Δ| \(worst)")
        }
        let normalized = try pipeline.embed(cases.map { $0.string("text") }, pooling: pooling, normalize: true, stride: 4)
        for (unit, vector) in zip(normalized, ours) {
            #expect(abs(unit.map { Double($0 * $0) }.reduce(0, +) - 1) < 1e-5)
            #expect(Pipeline.cosine(unit, vector) > 0.99999)
        }
    }

    @Test func similarityIsCosine() throws {
        let pipeline = try TaskFixtures.pipeline("embedding")
        #expect(abs(try pipeline.similarity("Paris is big .", "Paris is big .") - 1) < 1e-6)
        let s = try pipeline.similarity("Paris is big .", "John works at Google .")
        #expect(s > -1 && s < 0.9999)
        #expect(Pipeline.cosine([1, 0], [0, 2]) == 0)
        #expect(Pipeline.cosine([0, 0], [1, 1]) == 0)
    }

    @Test func poolerNeedsAPooler() throws {
        #expect(throws: ModelError.self) { try TaskFixtures.pipeline("ner").embed(["a"], pooling: .pooler) }
        #expect(try TaskFixtures.pipeline("ner").embed(["John"], pooling: .cls)[0].count == 32)
    }
}
