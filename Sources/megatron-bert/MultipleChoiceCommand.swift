import ArgumentParser
import Foundation
import MegatronBERT

struct MultipleChoiceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "multiple-choice",
        abstract: "Score candidate endings of a prompt with a fine-tuned multiple-choice head.",
        discussion: """
        Output per prompt: every choice with index, choice, score (softmax over the choices) and logit, best first.

        Examples:
          megatron-bert multiple-choice --model ./my-swag-megatron --prompt "She opened the door and" "walked in." "ate the door."
          megatron-bert multiple-choice --model M --input items.jsonl --json   # lines {"prompt": "...", "choices": [...]}
        """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "The prompt (first text of every pair).")
    var prompt: String?

    @Argument(help: "The candidate endings.")
    var choices: [String] = []

    func validate() throws {
        guard (prompt == nil) != (options.input == nil) else { throw ValidationError("give --prompt with CHOICES, or --input FILE.jsonl") }
        if prompt != nil && choices.isEmpty { throw ValidationError("give the candidate endings after --prompt") }
    }

    func run() throws {
        try reportingErrors {
            let pipeline = try options.loadPipeline()
            let runner = TaskRunner<ChoiceInput, [ChoiceScore]>(
                options: options,
                task: .multipleChoice, item: { ChoiceInput(prompt: $0.text("prompt"), choices: $0.texts("choices")) },
                run: { items in try pipeline.multipleChoice(items) },  // batched: batch-size examples per forward pass
                describe: { item, scores in
                    ([item.prompt] + scores.map { "  \(formatScore($0.score))  \($0.choice)" }).joined(separator: "\n")
                })
            try runner(prompt.map { [ChoiceInput(prompt: $0, choices: choices)] } ?? [])
        }
    }
}
