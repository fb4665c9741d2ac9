import Foundation
import BERTTokenizer
/// A task cut where a server cuts it: inputs become rows (`prepare`: tokenizing, windows, and what to remember),
/// any `BatchExecutor` runs the rows (batched with other requests' rows, on any backend), and the rows' outputs
/// become results (`finish`). `Pipeline.run` does the three in order; each task also has a `Pipeline` method.
///
/// ```swift
/// let task = try NextSentenceTask(pipeline: pipeline)
/// let (rows, plan) = try task.prepare([("It rained.", "The streets were wet.")])
/// let outputs = try pipeline.executor.run(rows, work: task.work)   // or a server's executor
/// print(try task.finish(outputs, plan: plan)[0].isNextProbability)
/// ```
public protocol ModelTask: Sendable {
    associatedtype Input
    associatedtype Output
    /// What `finish` needs to know of `prepare`'s work (which input each row came from, offsets, …).
    associatedtype Plan
    /// What the executor must compute for the rows.
    var work: RowWork { get }
    func prepare(_ inputs: [Input]) throws -> (rows: [ModelRow], plan: Plan)
    func finish(_ outputs: [RowOutput], plan: Plan) throws -> [Output]
}

/// The usual plan: the inputs themselves, the rows made of them, and for each row the input it came from.
public struct RowOwners<Input> {
    public var inputs: [Input]
    public var rows: [ModelRow]
    /// `owner[r]`: the input row r came from (several rows per input when a long text is read in windows).
    public var owner: [Int]

    /// A plan whose rows were made elsewhere (a server that encodes inputs its own way).
    public init(inputs: [Input], rows: [ModelRow], owner: [Int]) {
        self.inputs = inputs
        self.rows = rows
        self.owner = owner
    }
}

extension Pipeline {
    /// Runs a task: prepare, the pipeline's executor, finish.
    public func run<Task: ModelTask>(_ task: Task, _ inputs: [Task.Input]) throws -> [Task.Output] {
        let (rows, plan) = try StageTimes.shared.measure("tokenize") { try task.prepare(inputs) }
        return try execute(task, rows: rows, plan: plan)
    }

    /// What `run` does after `task.prepare`: the pipeline's executor, then `finish` (so that a caller can prepare the
    /// next inputs while these run).
    public func execute<Task: ModelTask>(_ task: Task, rows: [ModelRow], plan: Task.Plan) throws -> [Task.Output] {
        let outputs = try StageTimes.shared.measure("forward") { try executor.run(rows, work: task.work) }
        return try StageTimes.shared.measure("finish") { try task.finish(outputs, plan: plan) }
    }

    /// Every input's rows (one encoding, or several windows) in one flat list, with the input each came from. The
    /// inputs are encoded on every core (a GPU runs a chunk of 2,048 sentences in ~70 ms); the first input that fails
    /// (in input order) throws.
    func rows<Input>(_ inputs: [Input], _ encode: (Input) throws -> [Encoding]) throws -> (rows: [ModelRow], plan: RowOwners<Input>) {
        let pieces = System.concurrentMap(inputs.count, minimumPerPart: 32) { i in Result { try encode(inputs[i]) } }
        var rows: [ModelRow] = [], owner: [Int] = []
        rows.reserveCapacity(inputs.count)
        owner.reserveCapacity(inputs.count)
        for (i, piece) in pieces.enumerated() {
            let encodings = try piece.get()
            rows += encodings.map { ModelRow($0) }
            owner += Array(repeating: i, count: encodings.count)
        }
        return (rows, RowOwners(inputs: inputs, rows: rows, owner: owner))
    }
}

/// The task's error when an output lacks what the task asked the executor for (a bug, not bad input).
func missingOutput(_ what: String, task: String) -> ModelError {
    ModelError(.internal, "internal error: \(task) got no \(what) from the executor")
}
