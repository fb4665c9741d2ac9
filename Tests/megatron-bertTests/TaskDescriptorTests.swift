import Foundation
import Testing
import MegatronBERT

/// Every task descriptor has a command that reads its JSON Lines fields (a line built from the descriptor alone runs
/// on a model with the task's head, and a line without a required field is refused by name and line), and `tasks`
/// lists it. (Its route, handler and OpenAPI path: MegatronServerTests/TaskRoutesTests; the Python worker's field
/// table: integrations/python/tests/test_worker.py.)
@Suite struct TaskDescriptorTests {
    /// A fixture model with each task's head; a task added without one fails here.
    static let models = ["embed": "embedding", "fill-mask": "pretraining", "ner": "ner", "qa": "qa", "nsp": "pretraining",
                         "multiple-choice": "multiple-choice", "classify": "classification"]

    @Test(arguments: TaskDescriptor.all.map(\.name))
    func everyTaskHasACommandThatReadsItsFields(name: String) throws {
        let task = try #require(TaskDescriptor.named(name))
        let model = try #require(Self.models[name], "no fixture model for the task \(name)")
        #expect(try CLI.run([name, "--help"]).status == 0, "no command \(name)")
        var line: [String: Any] = ["id": 7]
        for field in task.fields {
            line[field.name] = field.kind == .texts ? ["Paris.", "London."] as Any : "Paris is the [MASK] of France."
        }
        let path = CLI.temporaryPath("\(name).jsonl")
        let text = String(decoding: try JSONSerialization.data(withJSONObject: line), as: UTF8.self)
        let modelPath = TaskCommandTests.models + "/" + model
        try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: path))
        let ran = try CLI.run([name, "--model", modelPath, "--input", path, "--json", "--quiet"])
        #expect(ran.status == 0, "\(ran.stderr)")
        let output = try #require(try TaskCommandTests.lines(ran.stdout).first as? [String: Any])
        #expect(output["id"] as? Int == 7)
        if let members = task.objectResult {
            for member in members { #expect(output[member] != nil, "\(name) result lacks \(member)") }
        } else {
            #expect(output["result"] != nil)
        }
        // Without its first required field, the line is refused by name and line number.
        let first = try #require(task.fields.first { $0.required })
        line[first.name] = nil
        try Data((String(decoding: try JSONSerialization.data(withJSONObject: line), as: UTF8.self) + "\n").utf8)
            .write(to: URL(fileURLWithPath: path))
        let refused = try CLI.run([name, "--model", modelPath, "--input", path, "--json", "--quiet"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("\(path):1:") && refused.stderr.contains("\"\(first.name)\""), "\(refused.stderr)")
    }

    /// `tasks --json` lists every task with its route and fields, as the Python worker reads them.
    @Test func theTasksCommandListsEveryTask() throws {
        let ran = try CLI.run(["tasks", "--json"])
        #expect(ran.status == 0)
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(ran.stdout.utf8)) as? [[String: Any]])
        #expect(listed.compactMap { $0["name"] as? String } == TaskDescriptor.all.map(\.name))
        #expect(listed.compactMap { $0["route"] as? String } == TaskDescriptor.all.map(\.route))
    }

    /// A parameter's bound is one check: the command refuses --top-k 0 with the descriptor's message.
    @Test func parameterBoundsComeFromTheDescriptor() throws {
        let ran = try CLI.run(["fill-mask", "--model", TaskCommandTests.models + "/pretraining", "--top-k", "0", "[MASK]"])
        #expect(ran.status != 0)
        #expect(ran.stderr.contains("--top-k must be at least 1 (it is 0)"), "\(ran.stderr)")
        #expect(throws: ModelError.self) { try TaskDescriptor.questionAnswering.check("max_answer_len", 0) }
        #expect(throws: Never.self) { try TaskDescriptor.questionAnswering.check("max_answer_len", 1) }
    }
}
