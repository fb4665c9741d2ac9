import Foundation
import Testing
import BERTTokenizer
import MegatronCPU
import MegatronModel
import TensorFiles
@testable import MegatronTraining

/// Extractive QA's training: the features against run_qa's (scripts/make_qa_fixtures.py, 1,500 generated cases),
/// SQuAD's metrics against the official v2.0 script's functions (4,000 pairs, 60 sets, exact to 1e-9), the span loss
/// against central differences, the readers' formats and errors, and a run that learns, resumes to the same bits and
/// answers as the `qa` pipeline answers from the model it wrote.
@Suite struct QuestionAnsweringTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    struct FeatureCase: Decodable {
        struct Answers: Decodable { var text: [String]; var answer_start: [Int] }
        struct Window: Decodable { var input_ids: [Int]; var start: Int; var end: Int }
        var question: String, context: String, answers: Answers, max_length: Int, stride: Int, windows: [Window]
    }

    @Test func featuresAreRunQAs() throws {
        struct File: Decodable { var cases: [FeatureCase] }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: GradientTests.fixtures + "/qa-features.json")))
        let tokenizer = try BERTTokenizer(vocabulary: try Vocabulary(path: Self.packageRoot + "/vocab/megatron-bert-cased-vocab.txt"))
        var mismatches = 0, windows = 0
        for (index, c) in file.cases.enumerated() {
            let example = QuestionExample(id: "\(index)", question: c.question, context: c.context,
                                          answers: zip(c.answers.text, c.answers.answer_start).map { .init(text: $0, start: $1) },
                                          location: "case \(index)")
            let ours = try QuestionFeatures.windows(example, tokenizer: tokenizer, maxLength: c.max_length, stride: c.stride)
            windows += ours.count
            var same = ours.count == c.windows.count
            for (window, expected) in zip(ours, c.windows) where window.encoding.ids != expected.input_ids
                || window.start != expected.start || window.end != expected.end {
                same = false
            }
            if !same {
                mismatches += 1
                if mismatches <= 3 {
                    Issue.record("case \(index): ours \(ours.map { ($0.start, $0.end, $0.encoding.ids) }), run_qa \(c.windows.map { ($0.start, $0.end, $0.input_ids) })")
                }
            }
        }
        #expect(mismatches == 0 && file.cases.count == 1500, "\(mismatches) of \(file.cases.count) cases differ")
        print("QA features: \(file.cases.count) cases, \(windows) windows, as run_qa's")
    }

    @Test func squadMetricsAreTheOfficialScripts() throws {
        struct Pair: Decodable { var gold: String; var predicted: String; var normalized: String; var exact: Double; var f1: Double }
        struct Set: Decodable { var gold: [[String]]; var predicted: [String]; var scores: [String: Double] }
        struct File: Decodable { var pairs: [Pair]; var sets: [Set] }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: GradientTests.fixtures + "/squad-metrics.json")))
        var wrong = 0
        for pair in file.pairs {
            let normalized = SQuADMetrics.normalize(pair.gold)
            let exact = SQuADMetrics.exact(gold: pair.gold, predicted: pair.predicted)
            let f1 = SQuADMetrics.f1(gold: pair.gold, predicted: pair.predicted)
            if normalized != pair.normalized || exact != pair.exact || abs(f1 - pair.f1) > 1e-9 {
                wrong += 1
                if wrong <= 5 {
                    Issue.record("\(pair.gold.debugDescription) vs \(pair.predicted.debugDescription): normalized \(normalized.debugDescription) (\(pair.normalized.debugDescription)), exact \(exact) (\(pair.exact)), f1 \(f1) (\(pair.f1))")
                }
            }
        }
        #expect(wrong == 0 && file.pairs.count == 4000)
        for set in file.sets {
            let ours = SQuADMetrics.scores(gold: set.gold, predicted: set.predicted)
            #expect(Swift.Set(ours.keys) == Swift.Set(set.scores.keys), "\(ours.keys.sorted()) vs \(set.scores.keys.sorted())")
            for (key, value) in set.scores { #expect(abs((ours[key] ?? .nan) - value) <= 1e-9, "\(key): \(ours[key] ?? .nan) vs \(value)") }
        }
        #expect(SQuADMetrics.normalize("The  Eiffel-Tower, a landmark!") == "eiffeltower landmark")
    }

    /// The span loss's gradient against central differences, and the clamped, ignored positions.
    @Test func spanLossGradientsMatchFiniteDifferences() throws {
        let logits: [Float] = [0.3, -1.2, 2.0, 0.5, 0.0, -0.7, 1.1, 0.4, -0.3, 0.9, 0.2, -2.0]  // 2 sequences of 3 tokens
        let starts = [1, 3], ends = [2, 0]  // the second start is past the sequence: ignored
        let (loss, gradient) = try SpanLoss.evaluate(Tensor(shape: [6, 2], values: logits), starts: starts, ends: ends)
        for i in logits.indices {
            var up = logits, down = logits
            up[i] += 1e-3
            down[i] -= 1e-3
            let numeric = (try SpanLoss.evaluate(Tensor(shape: [6, 2], values: up), starts: starts, ends: ends).loss
                           - SpanLoss.evaluate(Tensor(shape: [6, 2], values: down), starts: starts, ends: ends).loss) / 2e-3
            #expect(abs(numeric - Double(gradient[i])) < 1e-4, "logit \(i): \(numeric) vs \(gradient[i])")
        }
        // By hand: the start term has one counted sequence (the first), the end term two.
        func nll(_ values: [Double], _ k: Int) -> Double { -(values[k] - log(values.map { exp($0) }.reduce(0, +))) }
        let start = nll([0.3, 2.0, 0.0], 1), end = (nll([-1.2, 0.5, -0.7], 2) + nll([0.4, 0.9, -2.0], 0)) / 2
        #expect(abs(loss - (start + end) / 2) < 1e-6)
        #expect(throws: TrainingError.self) { try SpanLoss.evaluate(Tensor(shape: [6, 2], values: logits), starts: [3, 7], ends: [0, 0]) }
        #expect(throws: TrainingError.self) { try SpanLoss.evaluate(Tensor(shape: [6, 2], values: logits), starts: [0], ends: [0, 1]) }
    }

    static func write(_ text: String, _ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qa-\(UUID().uuidString)-\(name)").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func readsSQuADAndJSONLines() throws {
        let squad = try Self.write("""
        {"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": "Zürich lies on the Limmat.",
          "qas": [{"id": "q1", "question": "Where is Zürich?", "answers": [{"text": "on the Limmat", "answer_start": 12}]},
                  {"id": "q2", "question": "Who?", "answers": [], "plausible_answers": [{"text": "Zürich", "answer_start": 0}], "is_impossible": true}]}]}]}
        """, "squad.json")
        let jsonl = try Self.write("""
        {"id": "a", "question": "What lies?", "context": "Zürich lies on the Limmat.", "answers": {"text": ["Zürich"], "answer_start": [0]}}
        {"question": "None?", "context": "Nothing here.", "answers": {"text": [], "answer_start": []}}
        """, "data.jsonl")
        defer { for path in [squad, jsonl] { try? FileManager.default.removeItem(atPath: path) } }
        let fromSQuAD = try QuestionAnswers.read(squad)
        #expect(fromSQuAD.map(\.id) == ["q1", "q2"] && fromSQuAD[0].answers == [.init(text: "on the Limmat", start: 12)] && fromSQuAD[1].answers.isEmpty)
        let fromLines = try QuestionAnswers.read(jsonl)
        #expect(fromLines.map(\.id) == ["a", jsonl + ":2"] && fromLines[0].answers == [.init(text: "Zürich", start: 0)])
        // An answer that is not at its answer_start names the file, the line and what the context holds there.
        let moved = try Self.write("""
        {"question": "q", "context": "abc def", "answers": {"text": ["def"], "answer_start": [3]}}
        """, "moved.jsonl")
        let past = try Self.write("""
        {"data": [{"paragraphs": [{"context": "abc", "qas": [{"id": "x", "question": "q", "answers": [{"text": "abc", "answer_start": 2}]}]}]}]}
        """, "past.json")
        let malformed = try Self.write("{\"data\": [{\"paragraphs\": [{\"context\": \"abc\"}]}]}", "malformed.json")
        defer { for path in [moved, past, malformed] { try? FileManager.default.removeItem(atPath: path) } }
        func message(_ path: String) -> String {
            do { _ = try QuestionAnswers.read(path); return "none" } catch { return "\(error)" }
        }
        #expect(message(moved).contains("\(moved):1: the answer \"def\" is not at answer_start 3: the context has \" de\" there"), "\(message(moved))")
        #expect(message(past).contains("question x") && message(past).contains("runs past the context's 3 characters"), "\(message(past))")
        #expect(message(malformed).contains("needs a \"context\" string and a \"qas\" list"), "\(message(malformed))")
    }

    // A task the tiny fixture model learns in a few hundred steps: "where is the animal?" — the one animal in a
    // context of other words (its first), or none (unanswerable). Windows of 10 tokens (the model's limit), stride 2.
    static let animals = ["cat", "dog", "bird"]

    static func questions(_ count: Int, seed: UInt64) -> [QuestionExample] {
        var random = SeededRandom(seed: seed)
        let others = ClassificationTrainerTests.words.filter { !animals.contains($0) }
        return (0..<count).map { i in
            var words = (0..<(2 + Int(random.next() % 6))).map { _ in others[Int(random.next() % UInt64(others.count))] }
            var answers: [QuestionExample.Answer] = []
            if i % 5 != 0 {
                let at = Int(random.next() % UInt64(words.count + 1))
                words.insert(animals[Int(random.next() % 3)], at: at)
                answers = [.init(text: words[at], start: words[..<at].map { $0.count + 1 }.reduce(0, +))]
            }
            return QuestionExample(id: "\(i)", question: "one", context: words.joined(separator: " "), answers: answers, location: "qa:\(i + 1)")
        }
    }

    static func trainer(_ options: TrainingOptions) throws -> ClassificationTrainer {
        let source = try TrainableModelTests.source("megatron-qa")
        let model = try TrainableModel(config: source.config, tensors: source.tensors, products: CPUMatrixProducts(), head: .questionAnswering,
                                       dropout: DropoutRates(hidden: 0.1, attention: 0.1, classifier: 0.1), newHead: true, seed: 3)
        return try ClassificationTrainer(model: model, tokenizer: try ClassificationTrainerTests.tokenizer(), labels: .answerSpans, options: options)
    }

    static func options() -> TrainingOptions {
        var options = TrainingOptions()
        (options.maxSteps, options.batchSize, options.evalEvery, options.metric) = (240, 8, 60, "f1")
        (options.learningRate, options.warmupRatio, options.seed, options.docStride) = (5e-3, 0.1, 5, 2)
        options.versionTwoWithNegative = true
        return options
    }

    /// The model learns (F1 over 80 on held-out questions, answerable and not), writes a directory our `qa` pipeline
    /// loads and answers every held-out question with as the evaluation did, and a run stopped and resumed ends with
    /// the same bits.
    @Test func learnsAnswersAsThePipelineAndResumes() throws {
        let train = Self.questions(120, seed: 1), dev = Self.questions(30, seed: 2)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("qa-run-\(UUID().uuidString)").path
        let whole = base + "-whole", parts = base + "-parts", vocabulary = base + "-vocab"
        defer { for path in [whole, parts, vocabulary] { try? FileManager.default.removeItem(atPath: path) } }
        try FileManager.default.createDirectory(atPath: vocabulary, withIntermediateDirectories: true)
        try Data(((["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ClassificationTrainerTests.words).joined(separator: "\n") + "\n").utf8)
            .write(to: URL(fileURLWithPath: vocabulary + "/vocab.txt"))
        let trainer = try Self.trainer(Self.options())
        let summary = try trainer.run(questions: train, eval: dev, output: whole, tokenizerDirectory: vocabulary)
        let best = try #require(summary.best)
        #expect(Set(best.keys) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1",
                                   "NoAns_total", "loss"], "\(best.keys.sorted())")
        #expect(best["f1"] ?? 0 > 80, "\(best)")
        #expect(best["total"] == 30 && best["NoAns_total"] == 6)

        // The written model, loaded for inference, answers as the evaluation did (the pipeline's post-processing).
        let config = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: whole + "/config.json")))
        #expect(config.object?["architectures"]?.array?.first?.string == "MegatronBertForQuestionAnswering")
        #expect(config.object?["problem_type"] == nil || config.object?["problem_type"] == .null)
        let reloaded = try Self.trainer(Self.options())
        try reloaded.model.restore(from: try SafeTensorsFile(path: whole + "/model.safetensors").tensors)
        let evaluated = try reloaded.predictions(dev, windows: try reloaded.prepare(questions: dev)).answers
        let pipeline = try Pipeline(path: whole, backend: CPUBackend())
        let options = AnswerOptions(maxAnswerLength: 30, docStride: 2, maxSequenceLength: 10, allowNoAnswer: true)
        let answered = try pipeline.answer(dev.map { ($0.question, $0.context) }, options: options).map { $0.first?.answer ?? "" }
        #expect(answered == evaluated, "pipeline \(answered) vs evaluation \(evaluated)")
        #expect(SQuADMetrics.scores(gold: dev.map { $0.answers.map(\.text) }, predicted: answered)["f1"] == best["f1"])

        let first = try Self.trainer(Self.options())
        var steps = 0
        first.progress = { if $0.evaluation == nil { steps = $0.step } }
        first.shouldStop = { steps >= 70 }
        _ = try first.run(questions: train, eval: dev, output: parts, tokenizerDirectory: vocabulary)
        _ = try Self.trainer(Self.options()).run(questions: train, eval: dev, output: parts, tokenizerDirectory: vocabulary, resume: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: parts + "/model.safetensors")) == Data(contentsOf: URL(fileURLWithPath: whole + "/model.safetensors")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: parts + "/metrics.jsonl")) == Data(contentsOf: URL(fileURLWithPath: whole + "/metrics.jsonl")))
    }
}
