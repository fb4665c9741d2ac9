import Testing
import MegatronBERT
@testable import MegatronServer

/// Every task descriptor has a route that the server dispatches (a handler), a path in the OpenAPI document with its
/// body's schema, and a name `POST /` and `--task` accept; every head's default route is a task that serves it.
@Suite struct TaskRoutesTests {
    @Test(arguments: TaskDescriptor.all.map(\.name))
    func everyTaskHasARouteAHandlerAndAnOpenAPIPath(name: String) throws {
        let task = try #require(TaskDescriptor.named(name))
        #expect(Server.taskHandlers[task.name] != nil, "no handler for \(name)")
        #expect(Server.tasks.contains(task.routeName))
        let document = OpenAPI.document(version: "test")
        let paths = try #require(document["paths"] as? [String: Any])
        let path = try #require(paths[task.route] as? [String: Any], "no OpenAPI path \(task.route)")
        #expect(path["post"] != nil)
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        #expect(schemas[task.body.schema] != nil, "no schema \(task.body.schema)")
        #expect(task.answer == "number" || schemas[task.answer] != nil, "no schema \(task.answer)")
    }

    @Test(arguments: ModelHead.allCases)
    func everyHeadsDefaultRouteServesIt(head: ModelHead) throws {
        let task = try #require(TaskDescriptor.named(Server.route(for: head)))
        #expect(task.serves(head))
    }
}
