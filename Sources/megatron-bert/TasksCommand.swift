import ArgumentParser
import Foundation
import MegatronBERT

struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "List the tasks: their commands, routes, input fields, parameters and the heads that serve them.",
        discussion: """
        Every task is declared once (TaskDescriptor); its command's JSON Lines input, its HTTP route and body, \
        POST /'s dispatch and the OpenAPI document come from that declaration, and the Python worker's field table \
        is checked against this list (--json).

        Example:
          megatron-bert tasks
          megatron-bert tasks --json
        """
    )

    @Flag(help: "One JSON array: name, route, heads, fields, parameters, result.")
    var json = false

    func run() throws {
        try reportingErrors {
            if json {
                let data = try JSONSerialization.data(withJSONObject: TaskDescriptor.all.map(Self.object), options: [.sortedKeys, .withoutEscapingSlashes])
                Console.line(String(decoding: data, as: UTF8.self))
                return
            }
            for task in TaskDescriptor.all {
                let fields = task.fields.map { "\($0.name)\($0.kind == .texts ? " [texts]" : "")\($0.required ? "" : " (optional)")" }
                let heads = task.heads.map { $0.map { "MegatronBert" + $0.rawValue }.joined(separator: ", ") } ?? "any model"
                Console.line("\(task.name)  POST \(task.route)  \(task.summary)")
                Console.line("  fields: \(fields.joined(separator: ", "))  heads: \(heads)")
                if !task.parameters.isEmpty {
                    Console.line("  parameters: " + task.parameters.map { p in
                        "\(p.name)\(p.flag.map { " (\($0))" } ?? "")\(p.defaultValue.map { " = \($0)" } ?? "")"
                    }.joined(separator: ", "))
                }
            }
        }
    }

    /// A task as `--json` prints it.
    static func object(_ task: TaskDescriptor) -> [String: Any] {
        [
            "name": task.name, "route": task.route, "summary": task.summary,
            "heads": task.heads.map { $0.map { "MegatronBert" + $0.rawValue } } ?? NSNull(),
            "fields": task.fields.map { ["name": $0.name, "kind": $0.kind.rawValue, "required": $0.required] as [String: Any] },
            "parameters": task.parameters.map { p -> [String: Any] in
                let kind: String
                switch p.kind {
                case .integer: kind = "integer"
                case .boolean: kind = "boolean"
                case .texts: kind = "texts"
                case .choice: kind = "choice"
                }
                return ["name": p.name, "flag": p.flag ?? NSNull(), "kind": kind, "default": p.defaultValue ?? NSNull()]
            },
            "result": task.objectResult.map { ["object": $0] } ?? ["list": "result"],
        ]
    }
}
