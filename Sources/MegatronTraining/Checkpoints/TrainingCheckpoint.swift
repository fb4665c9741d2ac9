import Foundation
import MegatronBackend
import MegatronModel
import TensorFiles

/// Where a run is between two optimizer steps: everything a resumed run needs to go on as if never stopped.
struct TrainingState: Codable, Equatable {
    /// Optimizer steps taken.
    var step = 0
    /// Epochs finished.
    var epoch = 0
    /// The next example's place in `order` (0: the epoch has not begun, and its order is still to be drawn).
    var position = 0
    /// Batches since the epoch began.
    var micro = 0
    /// The current epoch's order of the training examples.
    var order: [Int]
    /// The seeded generator's state (shuffles and dropout masks).
    var random: UInt64
    /// The training loss's sum and count since the last metrics line, and since the start.
    var lossSum = 0.0, lossCount = 0, totalLoss = 0.0, totalCount = 0
    /// metrics.jsonl so far.
    var metricsLines: [String] = []
    /// The best evaluation's metrics, and evaluations since it.
    var best: [String: Double]?
    var sinceBest = 0
}

/// What a checkpoint's `trainer_state.json` holds: the state, and what it must be resumed with.
struct CheckpointManifest: Codable {
    static let currentFormat = 1
    var format = currentFormat
    var state: TrainingState
    var options: TrainingOptions
    var labels: [String]
    var problemType: String
    /// The training examples: their count and a hash of their tokens and targets.
    var examples: Int
    var dataHash: UInt64
    var optimizerSteps: Int
    /// The products' precision ("fp32", "bf16"; absent: fp32).
    var precision: String?
}

/// A run's output directory: the best (or last) model's files at its top, `metrics.jsonl`, and checkpoints to resume
/// from in `checkpoint-STEP/` (the model's files, `optimizer.safetensors`, `trainer_state.json`). A lock beside it keeps
/// a second run (or a conversion) out while this one lives. Each checkpoint is written into a hidden directory and
/// renamed into place, and the older ones are removed only after, so a run killed while saving leaves the previous
/// checkpoint whole; the model's files at the top are each written aside and renamed over the old (the config and
/// tokenizer files are the same at every write, so the directory always holds a whole model).
final class RunDirectory {
    let path: String
    let url: URL
    private let lock: DirectoryLock
    static let checkpointPrefix = "checkpoint-"

    /// Opens (creating) `path` for a run, checking that it holds only what a fine-tune writes.
    init(_ path: String) throws {
        self.path = path
        url = URL(fileURLWithPath: path).standardizedFileURL
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw TrainingError("cannot create the directory for \(path): \((error as NSError).localizedDescription)")
        }
        lock = try DirectoryLock(url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).lock").path,
                                 for: path, writer: "fine-tune")
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw TrainingError("\(path) exists and is not a directory: choose another --output") }
        } else {
            try fm.createDirectory(at: url, withIntermediateDirectories: true)
        }
        let entries = try fm.contentsOfDirectory(atPath: url.path)
        for entry in entries where entry.hasPrefix(".") && entry.contains(".partial-") {  // what a killed save left
            try? fm.removeItem(at: url.appendingPathComponent(entry))
        }
        let others = entries.filter { !$0.hasPrefix(".") && !TrainableModel.writtenFiles.contains($0) && Self.step(of: $0) == nil }
        guard others.isEmpty else {
            throw TrainingError("\(path) holds files a fine-tune does not write (\(others.sorted().prefix(5).joined(separator: ", "))): write the model into a new or empty directory")
        }
    }

    deinit { lock.release() }

    /// The step of a checkpoint directory's name, or nil.
    static func step(of name: String) -> Int? {
        name.hasPrefix(checkpointPrefix) ? Int(name.dropFirst(checkpointPrefix.count)) : nil
    }

    /// The whole checkpoints, oldest first.
    var checkpoints: [(step: Int, url: URL)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return entries.compactMap { name in
            guard let step = Self.step(of: name) else { return nil }
            let directory = url.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("trainer_state.json").path) else { return nil }
            return (step, directory)
        }.sorted { $0.step < $1.step }
    }

    /// Whether the directory holds a model or checkpoints of an earlier run.
    var holdsARun: Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return entries.contains { $0 == "model.safetensors" || Self.step(of: $0) != nil }
    }

    /// Writes checkpoint `step` whole (`fill` writes into a hidden directory, renamed into place), then removes all but
    /// the newest `keep`.
    func writeCheckpoint(step: Int, keep: Int, _ fill: (URL) throws -> Void) throws -> URL {
        let fm = FileManager.default
        let target = url.appendingPathComponent(Self.checkpointPrefix + "\(step)")
        let staging = url.appendingPathComponent(".\(Self.checkpointPrefix)\(step).partial-\(getpid())")
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        do {
            try fill(staging)
            if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
            try fm.moveItem(at: staging, to: target)
        } catch {
            try? fm.removeItem(at: staging)
            throw TrainingError("cannot write the checkpoint \(target.path): \((error as NSError).localizedDescription)")
        }
        for old in checkpoints.dropLast(keep) { try? fm.removeItem(at: old.url) }
        return target
    }

    /// Puts the model's files at the top: `fill` writes them into a hidden directory, then each is renamed over its
    /// old copy.
    func placeModel(_ fill: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let staging = url.appendingPathComponent(".model.partial-\(getpid())")
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        defer { try? fm.removeItem(at: staging) }
        try fill(staging)
        // The weights last but metrics.jsonl: the config and tokenizer files they need are in place first.
        let last = ["model.safetensors", "metrics.jsonl"]
        func rank(_ name: String) -> (Int, String) { (last.firstIndex(of: name) ?? -1, name) }
        let names = try fm.contentsOfDirectory(atPath: staging.path).sorted { rank($0) < rank($1) }
        for name in names {
            guard rename(staging.appendingPathComponent(name).path, url.appendingPathComponent(name).path) == 0 else {
                throw TrainingError("cannot move \(name) into \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Writes metrics.jsonl whole (written aside, renamed over).
    func writeMetrics(_ lines: [String]) throws {
        let target = url.appendingPathComponent("metrics.jsonl")
        try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: target, options: .atomic)
    }
}

extension TrainableModel {
    /// Writes a checkpoint's files into `directory`: the model as `write(to:)` writes it, the optimizer's moments
    /// (`optimizer.safetensors`) and `trainer_state.json`.
    func writeCheckpoint(into directory: URL, manifest: CheckpointManifest, optimizer: AdamW, labels: [String],
                         problemType: Loss, tokenizerDirectory: String?) throws {
        try writeFiles(into: directory, labels: labels, problemType: problemType, tokenizerDirectory: tokenizerDirectory,
                       metrics: manifest.state.metricsLines)
        try SafeTensorsFile.write(Self.stored(optimizer.momentTensors),
                                  to: directory.appendingPathComponent("optimizer.safetensors").path,
                                  metadata: ["steps": "\(optimizer.steps)"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(manifest).write(to: directory.appendingPathComponent("trainer_state.json"))
    }

    /// Takes every parameter's values back from a checkpoint's model.safetensors (each must be there, of its shape).
    func restore(from tensors: [String: StoredTensor]) throws {
        for parameter in parameterList {
            guard let stored = tensors[parameter.name], stored.shape == parameter.shape, stored.dtype == .float32 else {
                throw TrainingError("the checkpoint's model.safetensors has no FP32 \(parameter.name) of shape \(parameter.shape)")
            }
            let values = stored.toFloats()
            parameter.value.data.update(from: values, count: parameter.count)
        }
    }
}

/// FNV-1a over 64-bit words: the fingerprint of the training data a checkpoint was made on.
struct DataHash {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ word: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) {
            value ^= (word >> UInt64(shift)) & 0xff
            value = value &* 0x100_0000_01b3
        }
    }
}
