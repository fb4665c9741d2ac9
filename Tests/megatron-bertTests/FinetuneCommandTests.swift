import Foundation
import Testing

/// `finetune classify` end to end on the tiny fixture classifier: a task it can learn (the label's word is in the
/// text), evaluated every epoch into metrics.jsonl, the best model written where `classify` runs it; and each mistake
/// in the data an error naming the file and line.
@Suite struct FinetuneCommandTests {
    static let model = TaskCommandTests.models + "/classification"

    /// JSON Lines of texts whose label ("positive" / "negative") is told by the word "big" or "small" in them.
    static func data(_ count: Int, seed: UInt64) -> String {
        let words = "the capital of France is Paris a city in Europe John Smith lives New York and works at Google river long very old"
            .split(separator: " ").map(String.init)
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % bound
        }
        return (0..<count).map { _ in
            var sentence = (0..<(3 + next(7))).map { _ in words[next(words.count)] }
            let big = next(2) == 0
            sentence.insert(big ? "big" : "small", at: next(sentence.count + 1))
            return "{\"text\": \"\(sentence.joined(separator: " "))\", \"label\": \"\(big ? "positive" : "negative")\"}"
        }.joined(separator: "\n") + "\n"
    }

    static func write(_ text: String, _ name: String) throws -> String {
        let path = CLI.temporaryPath(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aClassifierLearnsAndClassifyRunsIt() throws {
        let train = try Self.write(Self.data(200, seed: 1), "finetune-train.jsonl"), dev = try Self.write(Self.data(60, seed: 2), "finetune-dev.jsonl")
        let output = CLI.temporaryPath("finetuned")
        let ran = try CLI.run(["finetune", "classify", "--model", Self.model, "--train", train, "--eval", dev, "--output", output,
                               "--learning-rate", "1e-3", "--epochs", "6", "--metric", "accuracy", "--new-head"])
        #expect(ran.status == 0, "\(ran.stderr)")
        let lines = try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 6, "one line per epoch")
        let accuracies = try lines.map { try #require((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["eval_accuracy"] as? Double) }
        #expect((accuracies.max() ?? 0) >= 0.85, "it learns the task: \(accuracies)")
        #expect((accuracies.first ?? 1) < (accuracies.max() ?? 0), "and gets better: \(accuracies)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))) as? [String: Any])
        #expect(config["architectures"] as? [String] == ["MegatronBertForSequenceClassification"])
        #expect(config["id2label"] as? [String: String] == ["0": "negative", "1": "positive"])
        #expect(config["problem_type"] as? String == "single_label_classification")
        let classified = try CLI.run(["classify", "--model", output, "--device", "cpu", "--json", "a big city", "a small river"])
        #expect(classified.status == 0, "\(classified.stderr)")
        let labels = (try JSONSerialization.jsonObject(with: Data(classified.stdout.utf8)) as? [[[String: Any]]])?.map { $0.first?["label"] as? String }
        #expect(labels == ["positive", "negative"], "\(classified.stdout)")
    }

    /// CoNLL sentences (word, a POS column, tag; -DOCSTART- and blank lines) from the same words: people, places and
    /// companies tagged IOB2.
    static func conll(_ count: Int, seed: UInt64) -> String {
        let entities: [([String], String)] = [(["John", "Smith"], "PER"), (["Paris"], "LOC"), (["New", "York"], "LOC"),
                                              (["Google"], "ORG"), (["France"], "LOC")]
        let others = "the capital of is a city in lives and works at river long very old".split(separator: " ").map(String.init)
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % bound
        }
        var lines = ["-DOCSTART- -X- O", ""]
        for _ in 0..<count {
            for _ in 0..<(3 + next(6)) {
                if next(3) == 0 {
                    let (words, type) = entities[next(entities.count)]
                    for (k, word) in words.enumerated() { lines.append("\(word) NNP \(k == 0 ? "B" : "I")-\(type)") }
                } else {
                    lines.append("\(others[next(others.count)]) X O")
                }
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    @Test func aTaggerLearnsAndNERRunsIt() throws {
        let train = try Self.write(Self.conll(150, seed: 1), "ner-train.conll"), dev = try Self.write(Self.conll(40, seed: 2), "ner-dev.conll")
        let output = CLI.temporaryPath("finetuned-ner")
        let ran = try CLI.run(["finetune", "ner", "--model", TaskCommandTests.models + "/ner", "--train", train, "--eval", dev,
                               "--output", output, "--learning-rate", "5e-3", "--epochs", "8", "--metric", "f1", "--new-head"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stderr.contains("IOB2 tags: B-LOC, B-ORG, B-PER, I-LOC, I-PER, O"), "\(ran.stderr)")
        let lines = try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let scores = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(scores.count == 8 && scores.allSatisfy { $0["eval_PER_f1"] is Double && $0["eval_accuracy"] is Double })
        let f1 = scores.compactMap { $0["eval_f1"] as? Double }
        #expect((f1.max() ?? 0) >= 0.8, "it learns the entities: \(f1)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))) as? [String: Any])
        #expect(config["architectures"] as? [String] == ["MegatronBertForTokenClassification"])
        #expect((config["id2label"] as? [String: String])?["5"] == "O")
        let tagged = try CLI.run(["ner", "--model", output, "--device", "cpu", "--json", "John Smith lives in Paris"])
        #expect(tagged.status == 0, "\(tagged.stderr)")
        #expect(tagged.stdout.contains("PER") && tagged.stdout.contains("LOC"), "\(tagged.stdout)")
    }

    /// SQuAD v2.0 JSON from the fixture vocabulary's words: "Where does John live?" about contexts that say where he
    /// lives (Paris, London, New York) among other words, and one in five that does not (unanswerable).
    static func squad(_ count: Int, seed: UInt64) -> String {
        let places = ["Paris", "London", "New York"]
        let others = "the capital of France is a city in Europe and works at Google river long very big small old".split(separator: " ").map(String.init)
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % bound
        }
        var questions: [[String: Any]] = []
        for i in 0..<count {
            var context = (0..<(2 + next(8))).map { _ in others[next(others.count)] }.joined(separator: " ")
            var answers: [[String: Any]] = []
            if i % 5 != 0 {
                let place = places[next(places.count)]
                let before = context + " . John lives in "
                answers = [["text": place, "answer_start": before.unicodeScalars.count]]
                context = before + place + " . " + (0..<(1 + next(6))).map { _ in others[next(others.count)] }.joined(separator: " ")
            }
            questions.append(["context": context, "qas": [["id": "q\(i)", "question": "Where does John live ?", "answers": answers,
                                                         "is_impossible": answers.isEmpty]]])
        }
        let data = try! JSONSerialization.data(withJSONObject: ["version": "v2.0", "data": [["title": "t", "paragraphs": questions]]])
        return String(decoding: data, as: UTF8.self)
    }

    @Test func aReaderLearnsAndQARunsIt() throws {
        let train = try Self.write(Self.squad(160, seed: 1), "qa-train.json"), dev = try Self.write(Self.squad(40, seed: 2), "qa-dev.json")
        let output = CLI.temporaryPath("finetuned-qa")
        let ran = try CLI.run(["finetune", "qa", "--model", TaskCommandTests.models + "/qa", "--train", train, "--eval", dev, "--output", output,
                               "--learning-rate", "3e-3", "--epochs", "6", "--metric", "f1", "--max-length", "24", "--doc-stride", "8"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stderr.contains("on 160 questions (32 unanswerable: SQuAD v2.0 evaluation), 24 tokens per window, doc stride 8"), "\(ran.stderr)")
        let lines = try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let scores = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(scores.count == 6 && scores.allSatisfy { $0["eval_exact"] is Double && $0["eval_HasAns_f1"] is Double && $0["eval_NoAns_total"] as? Double == 8 })
        let f1 = scores.compactMap { $0["eval_f1"] as? Double }
        #expect((f1.max() ?? 0) >= 80, "it learns where John lives: \(f1)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))) as? [String: Any])
        #expect(config["architectures"] as? [String] == ["MegatronBertForQuestionAnswering"])
        let answered = try CLI.run(["qa", "--model", output, "--device", "cpu", "--json", "--question", "Where does John live ?",
                                    "--context", "the city of Europe is big . John lives in London . and works at Google"])
        #expect(answered.status == 0, "\(answered.stderr)")
        let answers = try JSONSerialization.jsonObject(with: Data(answered.stdout.utf8)) as? [[[String: Any]]]
        #expect(answers?.first?.first?["answer"] as? String == "London", "\(answered.stdout)")
        // An answer that is not where answer_start says is an error naming the question.
        let moved = try Self.write(#"{"question": "q", "context": "abc def", "answers": {"text": ["def"], "answer_start": [3]}}"#, "moved.jsonl")
        let refused = try CLI.run(["finetune", "qa", "--model", TaskCommandTests.models + "/qa", "--train", moved, "--output", CLI.temporaryPath("never")])
        #expect(refused.status != 0 && refused.stderr.contains("moved.jsonl:1: the answer \"def\" is not at answer_start 3"), "\(refused.stderr)")
    }

    /// Multiple-choice JSON Lines from the fixture vocabulary's words: "Where does John live ?" and four endings, one of
    /// them a place (the label, an index or a letter).
    static func choices(_ count: Int, seed: UInt64) -> String {
        let places = ["Paris", "London", "New York", "France", "Europe"], others = ["river", "long", "very big", "small", "old", "Google", "the capital"]
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % bound
        }
        return (0..<count).map { i in
            var endings = (0..<3).map { _ in others[next(others.count)] }
            let label = next(4)
            endings.insert(places[next(places.count)], at: label)
            let answer = i % 2 == 0 ? "\(label)" : "\"\(["A", "B", "C", "D"][label])\""
            return "{\"prompt\": \"Where does John live ?\", \"choices\": [\(endings.map { "\"\($0)\"" }.joined(separator: ", "))], \"label\": \(answer)}"
        }.joined(separator: "\n") + "\n"
    }

    @Test func aChooserLearnsAndMultipleChoiceRunsIt() throws {
        let train = try Self.write(Self.choices(120, seed: 1), "mc-train.jsonl"), dev = try Self.write(Self.choices(40, seed: 2), "mc-dev.jsonl")
        let output = CLI.temporaryPath("finetuned-mc")
        let ran = try CLI.run(["finetune", "multiple-choice", "--model", TaskCommandTests.models + "/multiple-choice", "--train", train,
                               "--eval", dev, "--output", output, "--learning-rate", "3e-3", "--epochs", "5", "--metric", "accuracy"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stderr.contains("for multiple choice on 120 examples of 4 choices"), "\(ran.stderr)")
        let lines = try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let accuracy = try lines.map { try #require((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["eval_accuracy"] as? Double) }
        #expect(accuracy.count == 5 && (accuracy.max() ?? 0) >= 0.9, "it learns to pick the place: \(accuracy)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))) as? [String: Any])
        #expect(config["architectures"] as? [String] == ["MegatronBertForMultipleChoice"] && config["problem_type"] == nil)
        let chosen = try CLI.run(["multiple-choice", "--model", output, "--device", "cpu", "--json", "--prompt", "Where does John live ?",
                                  "old", "river", "London", "small"])
        #expect(chosen.status == 0, "\(chosen.stderr)")
        let ranked = try JSONSerialization.jsonObject(with: Data(chosen.stdout.utf8)) as? [[[String: Any]]]
        #expect(ranked?.first?.first?["choice"] as? String == "London", "\(chosen.stdout)")
        // Choice lists of another length, and labels outside them, are errors naming the line.
        for (text, message) in [("{\"prompt\": \"p\", \"choices\": [\"a\", \"b\"], \"label\": 0}\n{\"prompt\": \"p\", \"choices\": [\"a\"], \"label\": 0}\n",
                                 "bad.jsonl:2: 1 choices where the first example has 2"),
                                ("{\"prompt\": \"p\", \"choices\": [\"a\", \"b\"], \"label\": 2}\n", "bad.jsonl:1: label 2 is not one of the 2 choices"),
                                ("{\"prompt\": \"p\", \"choices\": [\"a\", \"b\"], \"label\": \"right\"}\n", "bad.jsonl:1: the \"label\" must be")] {
            let bad = try Self.write(text, "bad.jsonl")
            let refused = try CLI.run(["finetune", "multiple-choice", "--model", TaskCommandTests.models + "/multiple-choice", "--train", bad,
                                       "--output", CLI.temporaryPath("never")])
            #expect(refused.status != 0 && refused.stderr.contains(message), "\(refused.stderr)")
        }
    }

    /// Continued pre-training on the fixture vocabulary's sentences: the held-out perplexity falls, the output stays
    /// MegatronBertForPreTraining and `fill-mask` runs it.
    @Test func maskedLMTrainingKeepsAPreTrainingModelForFillMask() throws {
        let sentences = ["Paris is the capital of France .", "John Smith lives in New York .", "Google is a big city ?",
                         "The river is very long .", "John works at Google ."]
        func text(_ count: Int, _ seed: Int) -> String { (0..<count).map { sentences[($0 * 7 + seed) % sentences.count] }.joined(separator: "\n") + "\n" }
        let train = try Self.write(text(80, 1), "mlm-train.txt"), dev = try Self.write(text(20, 3), "mlm-dev.txt")
        let output = CLI.temporaryPath("finetuned-mlm")
        let ran = try CLI.run(["finetune", "mlm", "--model", TaskCommandTests.models + "/pretraining", "--train", train, "--eval", dev,
                               "--output", output, "--learning-rate", "2e-3", "--epochs", "4", "--max-length", "32", "--metric", "perplexity"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stderr.contains("(PreTraining) on 80 documents, 32 tokens per sequence, packed, tokens masked at 0.15"), "\(ran.stderr)")
        let lines = try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let perplexity = try lines.map { try #require((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["eval_perplexity"] as? Double) }
        #expect(perplexity.count == 4 && perplexity.last! < perplexity.first!, "\(perplexity)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))) as? [String: Any])
        #expect(config["architectures"] as? [String] == ["MegatronBertForPreTraining"])
        let filled = try CLI.run(["fill-mask", "--model", output, "--device", "cpu", "Paris is the [MASK] of France ."])
        #expect(filled.status == 0 && !filled.stdout.isEmpty, "\(filled.stderr)")
        let empty = try Self.write("\n\n", "empty.txt")
        let refused = try CLI.run(["finetune", "mlm", "--model", TaskCommandTests.models + "/pretraining", "--train", empty, "--output", CLI.temporaryPath("never")])
        #expect(refused.status != 0 && refused.stderr.contains("holds no text"), "\(refused.stderr)")
    }

    /// --next-sentence-prediction: sentence pairs from documents (blank lines between them), the next-sentence metrics in
    /// metrics.jsonl, the output a pre-training model that `nsp` runs; refused for a model without the
    /// next-sentence head and beside --line-by-line.
    @Test func nextSentencePredictionTrainsFromDocuments() throws {
        let documents = ["Paris is the capital of France .\nThe river is very long .\nJohn works at Google .",
                         "John Smith lives in New York .\nGoogle is a big city ?", "The river is very long .\nParis is the capital of France ."]
        let text = (0..<12).map { documents[$0 % 3] }.joined(separator: "\n\n") + "\n"
        let train = try Self.write(text, "nsp-train.txt"), dev = try Self.write(documents.joined(separator: "\n\n"), "nsp-dev.txt")
        let output = CLI.temporaryPath("finetuned-nsp")
        let ran = try CLI.run(["finetune", "mlm", "--model", TaskCommandTests.models + "/pretraining", "--train", train, "--eval", dev,
                               "--output", output, "--next-sentence-prediction", "--epochs", "2", "--max-length", "32",
                               "--metric", "next_sentence_accuracy"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stderr.contains("on sentence pairs from 12 documents (28 sentences), up to 32 tokens per pair"), "\(ran.stderr)")
        let lines = try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let lastLine = try #require(lines.last)
        let last = try #require(try JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any])
        for key in ["eval_loss", "eval_masked_lm_loss", "eval_perplexity", "eval_next_sentence_loss", "eval_next_sentence_accuracy"] {
            #expect(last[key] as? Double != nil, "\(key) in \(last)")
        }
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))) as? [String: Any])
        #expect(config["architectures"] as? [String] == ["MegatronBertForPreTraining"])
        let pairs = try Self.write("{\"text\": \"Paris is the capital of France .\", \"text_pair\": \"The river is very long .\"}\n", "nsp-pairs.jsonl")
        let judged = try CLI.run(["nsp", "--model", output, "--device", "cpu", "--input", pairs, "--json"])
        #expect(judged.status == 0 && judged.stdout.contains("is_next_probability"), "\(judged.stderr)")
        let noHead = try CLI.run(["finetune", "mlm", "--model", TaskCommandTests.models + "/embedding", "--train", train,
                                  "--output", CLI.temporaryPath("never"), "--next-sentence-prediction"])
        #expect(noHead.status != 0 && noHead.stderr.contains("has none (no cls.seq_relationship)"), "\(noHead.stderr)")
        let both = try CLI.run(["finetune", "mlm", "--model", TaskCommandTests.models + "/pretraining", "--train", train,
                                "--output", CLI.temporaryPath("never"), "--next-sentence-prediction", "--line-by-line"])
        #expect(both.status != 0 && both.stderr.contains("choose one"), "\(both.stderr)")
    }

    @Test(arguments: [
        ("{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"y\"}\n", "{\"text\": \"c\", \"label\": \"x\"}\n{\"text\": \"d\", \"label\": \"z\"}\n", "dev.jsonl:2: unknown label \"z\""),
        ("{\"sentence\": \"a\", \"label\": \"x\"}\n", nil, "train.jsonl:1: no \"text\""),
        ("\n\n", nil, "holds no examples"),
        ("{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"x\"}\n", nil, "one class only"),
        ("{\"text\": 5, \"label\": \"x\"}\n", nil, "train.jsonl:1: \"text\" is not text"),
        ("{\"text\": \"a\", \"label\": 0.5}\n{\"text\": \"b\", \"label\": \"high\"}\n", nil, "train.jsonl:2: the label \"high\" is not a number"),
        ("{\"text\": \"a\", \"label\": \"x\"}\nnot json\n", nil, "train.jsonl:2: not valid JSON"),
    ] as [(String, String?, String)])
    func badDataIsAnErrorNamingTheLine(train: String, dev: String?, message: String) throws {
        let trainPath = try Self.write(train, "train.jsonl")
        var arguments = ["finetune", "classify", "--model", Self.model, "--train", trainPath, "--output", CLI.temporaryPath("never"), "--new-head"]
        if let dev { arguments += ["--eval", try Self.write(dev, "dev.jsonl")] }
        let ran = try CLI.run(arguments)
        #expect(ran.status != 0)
        #expect(ran.stderr.contains(message), "\(ran.stderr)")
    }

    @Test func csvMistakesNameTheLineToo() throws {
        let csv = try Self.write("text,label\n\"a, quoted\",x\nb,y,extra\n", "train.csv")
        let ran = try CLI.run(["finetune", "classify", "--model", Self.model, "--train", csv, "--output", CLI.temporaryPath("never"), "--new-head"])
        #expect(ran.stderr.contains("train.csv:3: 3 fields where the header has 2"), "\(ran.stderr)")
        let missing = try Self.write("sentence,label\na,x\n", "missing.csv")
        let other = try CLI.run(["finetune", "classify", "--model", Self.model, "--train", missing, "--output", CLI.temporaryPath("never")])
        #expect(other.stderr.contains("missing.csv:1: no column \"text\""), "\(other.stderr)")
        // A classifier with another label count needs --new-head.
        let two = try Self.write("{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"y\"}\n", "two.jsonl")
        let head = try CLI.run(["finetune", "classify", "--model", Self.model, "--train", two, "--output", CLI.temporaryPath("never")])
        #expect(head.stderr.contains("--new-head"), "\(head.stderr)")
        // Writing over the model one starts from is refused before anything is read.
        let itself = try CLI.run(["finetune", "classify", "--model", Self.model, "--train", two, "--output", Self.model + "/"])
        #expect(itself.status != 0 && itself.stderr.contains("--output is the --model directory itself"), "\(itself.stderr)")
    }

    /// Ctrl-C stops a run after its step with a checkpoint (exit 130); SIGKILL at a random moment leaves the last
    /// checkpoint whole; either way the same command with --resume ends with the uninterrupted run's bits.
    @Test(arguments: [SIGINT, SIGKILL])
    func aStoppedRunResumesToTheSameBits(signal: Int32) throws {
        let train = try Self.write(Self.data(200, seed: 1), "resume-train.jsonl")
        let whole = CLI.temporaryPath("resume-whole-\(signal)"), parts = CLI.temporaryPath("resume-parts-\(signal)")
        for path in [whole, parts] { try? FileManager.default.removeItem(atPath: path) }
        let arguments = ["finetune", "classify", "--model", Self.model, "--train", train, "--learning-rate", "1e-3",
                         "--max-steps", "400", "--new-head", "--quiet", "--save-every", "20", "--gradient-accumulation", "2"]
        let uninterrupted = try CLI.run(arguments + ["--output", whole])
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.executable)
        process.arguments = arguments + ["--output", parts]
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)  // the first checkpoint, then a random moment more
        while process.isRunning, Date() < deadline,
              !((try? FileManager.default.contentsOfDirectory(atPath: parts)) ?? []).contains(where: { $0.hasPrefix("checkpoint-") }) {
            usleep(2_000)
        }
        usleep(UInt32.random(in: 0...150_000))
        let wasRunning = process.isRunning
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        if wasRunning {
            #expect(signal == SIGKILL ? process.terminationReason == .uncaughtSignal : process.terminationStatus == 130)
        }
        let resumed = try CLI.run(arguments + ["--output", parts, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        for name in ["model.safetensors", "metrics.jsonl"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: whole + "/" + name)), b = try Data(contentsOf: URL(fileURLWithPath: parts + "/" + name))
            #expect(a == b, "\(name) of the resumed run")
        }
        let changed = try CLI.run(arguments.map { $0 == "1e-3" ? "2e-3" : $0 } + ["--output", parts, "--resume"])
        #expect(changed.stderr.contains("trained with --learning-rate 0.001, this run asks --learning-rate 0.002"), "\(changed.stderr)")
    }

    /// --gradient-checkpointing changes no bit of the result; --bf16 runs where the CPU has BF16 dot products and is
    /// refused with the reason elsewhere.
    @Test func recomputingAndBF16() throws {
        let train = try Self.write(Self.data(64, seed: 3), "options-train.jsonl")
        let arguments = ["finetune", "classify", "--model", Self.model, "--train", train, "--max-steps", "12", "--new-head", "--quiet"]
        let plain = CLI.temporaryPath("options-plain"), recomputed = CLI.temporaryPath("options-recomputed")
        for path in [plain, recomputed] { try? FileManager.default.removeItem(atPath: path) }
        #expect(try CLI.run(arguments + ["--output", plain]).status == 0)
        let ran = try CLI.run(arguments + ["--output", recomputed, "--gradient-checkpointing"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: plain + "/model.safetensors"))
                == Data(contentsOf: URL(fileURLWithPath: recomputed + "/model.safetensors")))
        let bf16 = CLI.temporaryPath("options-bf16")
        try? FileManager.default.removeItem(atPath: bf16)
        let half = try CLI.run(arguments + ["--output", bf16, "--bf16"])
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if flags.contains("avx512_bf16") || flags.contains("amx_bf16") {
            #expect(half.status == 0, "\(half.stderr)")
        } else {
            #expect(half.status != 0 && half.stderr.contains("BF16 dot products (AVX512_BF16 or AMX)"), "\(half.stderr)")
        }
    }
}
