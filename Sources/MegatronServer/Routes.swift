import BERTTokenizer
import Foundation
import HTTPTypes
import Hummingbird
import MegatronBERT
import NIOCore
import TensorFiles

/// What a request cost, sent back in TEI's timing headers, and whether its client is still there.
struct Timings {
    var tokenization: Duration = .zero
    var queue: Duration = .zero
    var inference: Duration = .zero
    var tokens = 0
    var characters = 0
    /// Whether the client went away (its request then leaves the queue).
    var clientLeft: @Sendable () -> Bool = { false }
}

extension Server {
    /// TEI's routes and ours. A path served for other methods answers 405 with `Allow`; `HEAD` works wherever `GET`
    /// does (the router's own HEAD endpoints). Open to all, as in TEI: `/health` (also `GET /` and SageMaker's
    /// `/ping`), `/metrics`, `/openapi.json`; every other route, `/info` included, needs the API key when one is set.
    func addRoutes(to router: Router<ServerContext>) {
        let methods = AllowedMethods()
        router.add(middleware: MethodMiddleware(allowed: methods))  // before the routes: middleware wraps the routes added after it
        func get(_ group: RouterGroup<ServerContext>, _ path: String, _ handler: @escaping @Sendable () -> Response) {
            methods.add(.get, path)
            group.get(RouterPath(path)) { _, _ in handler() }
        }
        let open = router.group()
        for path in ["/health", "/", "/ping"] { get(open, path) { Response(status: .ok) } }
        let openAPI = OpenAPI.json(version: MegatronBERTVersion.current)
        get(open, "/openapi.json") {
            Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: openAPI)))
        }
        get(open, "/metrics") {
            self.metrics.queueSize.set(to: Double(self.queue.waiting))  // the queue as it is now (requests leave it between batches too)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(string: self.metrics.text())))
        }
        let keyed = router.group()
        if let key = options.apiKey { keyed.add(middleware: ErrorMiddleware(logger: logger)).add(middleware: APIKeyMiddleware(key: key)) }
        get(keyed, "/info") { Self.json(self.info, status: .ok) }
        // The model routes: the cross-cutting work in middleware, outermost first, then each route's handler.
        let models = router.group()
            .add(middleware: MetricsMiddleware(metrics: metrics, clientWatch: clientWatch))
            .add(middleware: ErrorMiddleware(logger: logger))
        if let key = options.apiKey { models.add(middleware: APIKeyMiddleware(key: key)) }
        models.add(middleware: ConcurrencyMiddleware(limiter: limiter))
            .add(middleware: TimingHeadersMiddleware())
            .add(middleware: PayloadLimitMiddleware(limit: options.payloadLimit))
        func post(_ path: String, _ handler: @escaping @Sendable (Body, inout Timings) async throws -> any Encodable) {
            methods.add(.post, path)
            modelRoute(models, RouterPath(path), handler)
        }
        for task in TaskDescriptor.all {  // every task's route
            post(task.route) { body, timings in try await self.run(task, body, &timings) }
        }
        post("/embed_all") { body, timings in try await self.embedAll(body, &timings) }
        for path in ["/v1/embeddings", "/embeddings"] { post(path) { body, timings in try await self.openAIEmbeddings(body, &timings) } }
        post("/tokenize") { body, _ in try self.tokenize(body) }
        post("/decode") { body, _ in try self.decode(body) }
        post("/rerank") { body, timings in try await self.rerank(body, &timings) }
        post("/similarity") { body, timings in try await self.similarity(body, &timings) }
        // POST / and SageMaker's /invocations: the model's own task.
        for path in ["/", "/invocations"] { post(path) { body, timings in try await self.route(self.defaultRoute, body, &timings) } }
        post("/vertex") { body, timings in try await self.vertex(body, &timings) }
    }

    /// Vertex AI's route: `{"instances": [...]}`, each instance a request of its own — reranking when it has `query`
    /// and `texts`, else what `POST /` serves — answered `{"predictions": [...]}`, each the route's own answer.
    func vertex(_ body: Body, _ timings: inout Timings) async throws -> VertexResponse {
        guard let instances = body.json["instances"]?.array else {
            throw APIError.badRequest("missing field `instances`: Vertex AI sends {\"instances\": [{\"inputs\": ...}, ...]}")
        }
        try checkBatchSize(instances.count)
        var predictions: [AnyEncodable] = []
        for (index, instance) in instances.enumerated() {
            guard let object = instance.object else { throw APIError.badRequest("`instances[\(index)]` must be a JSON object, not \(instance)") }
            let request = Body(object: object)
            let rerank = object["query"] != nil && object["texts"] != nil
            predictions.append(AnyEncodable(rerank ? try await self.rerank(request, &timings) : try await route(defaultRoute, request, &timings)))
        }
        return VertexResponse(predictions: predictions)
    }

    var info: Info {
        Info(modelID: options.modelID, modelSHA: nil, modelDType: options.dtype,
             modelType: pipeline.model.head == .sequenceClassification
                ? .classifier(id2label: Dictionary(uniqueKeysWithValues: pipeline.model.config.id2label.map { (String($0.key), $0.value) }))
                : .embedding(pooling: pooling.rawValue),
             maxConcurrentRequests: options.maxConcurrentRequests, maxInputLength: pipeline.maxLength,
             maxBatchTokens: options.maxBatchTokens, maxBatchRequests: options.maxBatchRequests,
             maxClientBatchSize: options.maxClientBatchSize, autoTruncate: options.autoTruncate, tokenizationWorkers: 1,
             version: MegatronBERTVersion.current, sha: nil, dockerLabel: nil)
    }

    /// A model route on `group` (the one with the middleware): the handler reads the body (collected by
    /// `PayloadLimitMiddleware`), runs, and answers JSON; its timings go to the request's record.
    func modelRoute(_ group: RouterGroup<ServerContext>, _ path: RouterPath,
                    _ handler: @escaping @Sendable (Body, inout Timings) async throws -> any Encodable) {
        group.post(path) { request, context in
            let buffer = try await request.body.collect(upTo: .max)  // already collected, within the payload limit
            var timings = context.record.timings
            defer { context.record.timings = timings }
            return Self.json(try await handler(try Body(Array(buffer.readableBytesView)), &timings), status: .ok)
        }
    }

    /// A value as a JSON response, keys sorted.
    static func json(_ value: any Encodable, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: jsonData(value))))
    }

    /// A value's JSON bytes as every answer writes them (keys sorted, slashes unescaped), also where no route answers
    /// (the connection guard's early 413).
    static func jsonData(_ value: any Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return (try? encoder.encode(value)) ?? Data(#"{"error":"the answer could not be encoded","error_type":"Backend"}"#.utf8)
    }

    /// A task route by name (what `POST /` serves).
    func route(_ name: String, _ body: Body, _ timings: inout Timings) async throws -> any Encodable {
        try await run(TaskDescriptor.named(name) ?? .embed, body, &timings)
    }

    /// A task's route: its body read and run by the task's handler.
    func run(_ task: TaskDescriptor, _ body: Body, _ timings: inout Timings) async throws -> any Encodable {
        guard let handler = Self.taskHandlers[task.name] else {
            throw APIError(.internalServerError, .backend, "internal error: no handler for the task \(task.name)")
        }
        return try await handler(self, body, &timings)
    }

    typealias TaskHandler = @Sendable (Server, Body, inout Timings) async throws -> any Encodable

    /// Each task's handler, by task name (a test checks that every `TaskDescriptor` has one).
    static let taskHandlers: [String: TaskHandler] = [
        TaskDescriptor.embed.name: { server, body, timings in try await server.embed(body, &timings) },
        TaskDescriptor.fillMask.name: { server, body, timings in try await server.fillMask(body, &timings) },
        TaskDescriptor.ner.name: { server, body, timings in try await server.ner(body, &timings) },
        TaskDescriptor.questionAnswering.name: { server, body, timings in try await server.questionAnswering(body, &timings) },
        TaskDescriptor.nextSentence.name: { server, body, timings in try await server.nextSentence(body, &timings) },
        TaskDescriptor.multipleChoice.name: { server, body, timings in try await server.multipleChoice(body, &timings) },
        TaskDescriptor.classify.name: { server, body, timings in try await server.predict(body, &timings) },
    ]

    // MARK: - Inputs

    /// The texts of `inputs`, checked against the client batch limit.
    func inputTexts(_ body: Body, key: String = "inputs") throws -> (texts: [String], batch: Bool) {
        let (texts, batch) = try body.texts(key)
        try checkBatchSize(texts.count)
        return (texts, batch)
    }

    func checkBatchSize(_ count: Int) throws {
        if count > options.maxClientBatchSize && !options.autoSplit {
            throw APIError.validation("batch size \(count) > maximum allowed batch size \(options.maxClientBatchSize) (--max-client-batch-size; --auto-split serves larger batches)")
        }
    }

    /// The embedding routes' inputs as rows: texts tokenized, or token ids taken as they are; within the model's
    /// limit (cut when `truncate`, else refused).
    func embeddingRows(_ body: Body, key: String, _ timings: inout Timings) throws -> RowOwners<String> {
        let (truncate, side) = try truncation(body)
        let (texts, ids, _) = try body.textsOrIDs(key)
        if let texts {
            try checkBatchSize(texts.count)
            return try rows(texts, truncate: truncate, side: side, &timings)
        }
        let sequences = ids ?? []
        try checkBatchSize(sequences.count)
        let rows = try sequences.map { sequence -> ModelRow in
            if sequence.count > pipeline.maxLength && !truncate {
                throw APIError.validation("Input validation error: `\(key)` must have less than \(pipeline.maxLength) tokens. Given: \(sequence.count)")
            }
            let kept = side == .left ? sequence.suffix(pipeline.maxLength) : sequence.prefix(pipeline.maxLength)
            return ModelRow(try pipeline.tokenizer.encoding(ids: Array(kept)))
        }
        timings.tokens += rows.reduce(0) { $0 + $1.length }
        return RowOwners(inputs: sequences.map { _ in "" }, rows: rows, owner: Array(rows.indices))
    }

    /// One row per text, within the model's limit: cut on `side` (`truncate`, or `--auto-truncate`) or refused.
    func rows(_ texts: [String], truncate: Bool, side: TruncationSide, _ timings: inout Timings) throws -> RowOwners<String> {
        let started = ContinuousClock.now
        var rows: [ModelRow] = []
        for text in texts {
            let (encoding, cut) = try pipeline.tokenizer.encodeTruncating(text, maxLength: pipeline.maxLength, side: side)
            if cut && !truncate {
                throw APIError.validation("Input validation error: `inputs` must have less than \(pipeline.maxLength) tokens; \"\(text.prefix(40))…\" has more (send \"truncate\": true, or start the server with --auto-truncate)")
            }
            rows.append(ModelRow(encoding))
            timings.tokens += encoding.count
            timings.characters += text.count
        }
        timings.tokenization += ContinuousClock.now - started
        return RowOwners(inputs: texts, rows: rows, owner: Array(rows.indices))
    }

    /// Runs rows through the queue, noting the waits.
    func outputs(_ rows: [ModelRow], work: RowWork, _ timings: inout Timings) async throws -> [RowOutput] {
        let (outputs, timing) = try await queue.submit(rows, work: work, clientLeft: timings.clientLeft)
        timings.queue += timing.queue
        timings.inference += timing.inference
        return outputs
    }

    /// TEI's `truncate` (or `--auto-truncate`) and `truncation_direction` ("Right", the default, cuts a long input's
    /// end; "Left" its start).
    func truncation(_ body: Body) throws -> (truncate: Bool, side: TruncationSide) {
        let truncate = try body.bool("truncate", default: false) || options.autoTruncate
        switch try body.string("truncation_direction") {
        case nil, "Right", "right": return (truncate, .right)
        case "Left", "left": return (truncate, .left)
        case let other?: throw APIError.validation("truncation_direction must be \"Right\" or \"Left\", not \"\(other)\"")
        }
    }

    // MARK: - Embeddings

    /// Sentence vectors: pooled, cut to `dimensions`, then scaled to unit length when `normalize`.
    func vectors(_ plan: RowOwners<String>, body: Body, normalizeByDefault: Bool, _ timings: inout Timings) async throws -> [[Float]] {
        let normalize = try body.bool("normalize", default: normalizeByDefault)
        let hidden = pipeline.model.config.hiddenSize
        let dimensions = try body.int("dimensions")
        if let dimensions, !(1...hidden).contains(dimensions) {
            throw APIError.validation("`dimensions` must be between 1 and the model's \(hidden), not \(dimensions)")
        }
        let task = try EmbeddingTask(pipeline: pipeline, pooling: pooling, normalize: false)
        var vectors = try task.finish(try await outputs(plan.rows, work: task.work, &timings), plan: plan)
        for i in vectors.indices {
            if let dimensions { vectors[i] = Array(vectors[i].prefix(dimensions)) }
            if normalize {
                let norm = vectors[i].reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                if norm > 0 { vectors[i] = vectors[i].map { Float(Double($0) / norm) } }
            }
        }
        return vectors
    }

    /// TEI `POST /embed`: always a list of vectors.
    func embed(_ body: Body, _ timings: inout Timings) async throws -> [[Float]] {
        try await vectors(try embeddingRows(body, key: "inputs", &timings), body: body, normalizeByDefault: true, &timings)
    }

    /// TEI `POST /embed_all`: every token's vector, per input.
    func embedAll(_ body: Body, _ timings: inout Timings) async throws -> [[[Float]]] {
        let plan = try embeddingRows(body, key: "inputs", &timings)
        let h = pipeline.model.config.hiddenSize
        return try await outputs(plan.rows, work: .encoder, &timings).map { output in
            guard let hidden = output.hidden else { throw APIError(.internalServerError, .backend, "no hidden states") }
            return stride(from: 0, to: hidden.count, by: h).map { Array(hidden[$0..<$0 + h]) }
        }
    }

    /// OpenAI's `POST /v1/embeddings`.
    func openAIEmbeddings(_ body: Body, _ timings: inout Timings) async throws -> OpenAIEmbeddings {
        let format = try body.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else {
            throw APIError.validation("encoding_format must be \"float\" or \"base64\", not \"\(format)\"")
        }
        let vectors = try await self.vectors(try embeddingRows(body, key: "input", &timings), body: body, normalizeByDefault: true, &timings)
        let data = vectors.enumerated().map { index, vector in
            OpenAIEmbeddings.Item(embedding: format == "float" ? .floats(vector) : .base64(vector.withUnsafeBytes { Data($0) }.base64EncodedString()),
                                  index: index)
        }
        return OpenAIEmbeddings(data: data, model: options.modelID,
                                usage: .init(promptTokens: timings.tokens, totalTokens: timings.tokens))
    }

    // MARK: - Tokens

    /// TEI `POST /tokenize`: the tokens of each input, with their byte offsets.
    func tokenize(_ body: Body) throws -> [[SimpleToken]] {
        let texts = try inputTexts(body).texts
        let special = try body.bool("add_special_tokens", default: true)
        return try texts.map { text in
            let encoding = try pipeline.tokenizer.encode(text)
            let utf8 = Array(text.utf8)
            return encoding.ids.indices.compactMap { i -> SimpleToken? in
                if encoding.specialTokensMask[i] == 1 {
                    return special ? SimpleToken(id: encoding.ids[i], text: encoding.tokens[i], special: true, start: nil, stop: nil) : nil
                }
                let range = encoding.byteOffsets[i]
                return SimpleToken(id: encoding.ids[i], text: String(decoding: utf8[range], as: UTF8.self), special: false,
                                   start: range.lowerBound, stop: range.upperBound)
            }
        }
    }

    /// TEI `POST /decode`: token ids (a list, or a list of lists) back to text.
    func decode(_ body: Body) throws -> [String] {
        guard let ids = body.json["ids"], let list = ids.array, !list.isEmpty else {
            throw APIError.badRequest("`ids` must be a non-empty list of token ids, or a list of such lists")
        }
        let skip = try body.bool("skip_special_tokens", default: true)
        let sequences: [[JSONValue]] = list.allSatisfy { $0.array != nil } ? list.map { $0.array! } : [list]
        try checkBatchSize(sequences.count)
        let vocabulary = pipeline.tokenizer.vocabulary.count
        return try sequences.map { sequence in
            let tokens = try sequence.map { value -> Int in
                guard let id = value.int, (0..<vocabulary).contains(id) else {
                    throw APIError.validation("`ids` must hold token ids between 0 and \(vocabulary - 1), not \(value)")
                }
                return id
            }
            return try pipeline.tokenizer.decode(tokens, skipSpecialTokens: skip)
        }
    }

    // MARK: - Tasks (Hugging Face Inference API bodies)

    /// `POST /fill-mask`: {"inputs": text or texts, "parameters": {"top_k", "targets"}}; a text's answer is a list of
    /// predictions (a list of lists with several masks); a batch answers a list of those.
    func fillMask(_ body: Body, _ timings: inout Timings) async throws -> any Encodable {
        let (texts, batch) = try inputTexts(body)
        let parameters = try body.parameters()
        let topK = try parameters.int("top_k") ?? 5
        try checkParameter(.fillMask, "top_k", topK)
        var targets: [String]?
        if let value = parameters.json["targets"], value != .null {
            if let one = value.string { targets = [one] } else if let list = value.array, list.allSatisfy({ $0.string != nil }), !list.isEmpty {
                targets = list.compactMap(\.string)
            } else {
                throw APIError.badRequest("`targets` must be a string or a non-empty list of strings, not \(value)")
            }
        }
        let task = try FillMaskTask(pipeline: pipeline, topK: topK, targets: targets)
        let answers = try await run(task, texts, characters: texts.reduce(0) { $0 + $1.count }, &timings).map(FillMaskAnswer.init)
        return shaped(answers, batch: batch)
    }
}
