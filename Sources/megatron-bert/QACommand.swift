import ArgumentParser
import Foundation
import MegatronBERT

struct QACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qa",
        abstract: "Extractive question answering with a fine-tuned head: the span of the context that answers.",
        discussion: """
        Output per question: the top-k {answer, score, start, end} (character offsets into the context), as \
        transformers v4's question-answering pipeline gave them; long contexts are read in windows of \
        --max-seq-length tokens overlapping by --doc-stride.

        Examples:
          megatron-bert qa --model ./my-squad-megatron --question "Where does John live?" --context "John lives in Paris."
          megatron-bert qa --model M --input questions.jsonl --json     # lines {"question": "...", "context": "..."}
        """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "The question.")
    var question: String?

    @Option(help: "The text to find the answer in.")
    var context: String?

    @Option(parsing: .unconditional, help: "Answers per question.")
    var topK: Int = 1

    @Option(parsing: .unconditional, help: "The most tokens an answer may span.")
    var maxAnswerLength: Int = 15

    @Option(parsing: .unconditional, help: "Tokens shared by neighbouring windows (default: min(max-seq-length / 2, 128)).")
    var docStride: Int?

    @Option(parsing: .unconditional, help: "Tokens per window (default: min(384, the model's limit)).")
    var maxSeqLength: Int?

    @Flag(help: "Also offer \"no answer\" (an empty answer scored by the [CLS] token).")
    var allowNoAnswer = false

    func validate() throws {
        guard (question == nil) == (context == nil) else { throw ValidationError("give --question and --context together") }
        guard (question == nil) != (options.input == nil) else { throw ValidationError("give --question and --context, or --input FILE.jsonl") }
        try checkFlag(.questionAnswering, "top_k", topK)
        try checkFlag(.questionAnswering, "max_answer_len", maxAnswerLength)
        if let docStride, docStride < 0 { throw ValidationError("--doc-stride must be 0 or more (it is \(docStride))") }
        if let maxSeqLength, maxSeqLength < 4 { throw ValidationError("--max-seq-length must be at least 4 (it is \(maxSeqLength)): a window holds [CLS], the question, [SEP], context and [SEP]") }
    }

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            let settings = AnswerOptions(topK: topK, maxAnswerLength: maxAnswerLength, docStride: docStride,
                                         maxSequenceLength: maxSeqLength, allowNoAnswer: allowNoAnswer)
            let runner = TaskRunner<(question: String, context: String), [Answer]>(
                options: options,
                task: .questionAnswering, item: { ($0.text("question"), $0.text("context")) },
                run: { try pipeline.answer($0, options: settings) },
                describe: { item, answers in
                    ([item.question] + answers.map { "  \(formatScore($0.score))  \($0.start)..<\($0.end)  \($0.answer.isEmpty ? "(no answer)" : $0.answer)" })
                        .joined(separator: "\n")
                })
            if let question, let context { try runner([(question, context)]) } else { try runner([]) }
        }
    }
}
