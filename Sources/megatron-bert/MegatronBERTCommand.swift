import ArgumentParser
import Foundation
import MegatronBERT
import BERTTokenizer
import TensorFiles

@main
struct MegatronBERTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "megatron-bert",
        abstract: "Run NVIDIA's Megatron-BERT (and BERT) natively: fill-mask, next sentence, embeddings, classification, NER, QA.",
        discussion: """
        Models are Hugging Face directories: config.json plus model.safetensors, sharded safetensors \
        (model.safetensors.index.json) or pytorch_model.bin (weights stored as F32, F16 or BF16); or Megatron-LM \
        checkpoints: a .pt file (either torch.save format) or NVIDIA's NGC .zip, converted in memory.
        """,
        subcommands: [
            FillMaskCommand.self, NextSentenceCommand.self, EmbedCommand.self, SimilarityCommand.self, ClassifyCommand.self,
            NERCommand.self, QACommand.self, MultipleChoiceCommand.self, InfoCommand.self, TokenizeCommand.self,
            ForwardCommand.self, BenchCommand.self, InspectCommand.self, ConvertCommand.self, DownloadCommand.self,
        ]
    )
}

extension DType: ExpressibleByArgument {}

/// A failure to report as "Error: <message>" with exit code 1 (no usage text: the command line was fine).
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// A whole input file's bytes, or standard input's for "-".
func readInput(_ path: String, what: String) throws -> Data {
    if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
    guard let contents = FileManager.default.contents(atPath: path) else {
        throw CommandError("cannot read \(what) \(path)")
    }
    return contents
}

/// Turns library errors into ArgumentParser's clean "Error: …" output with a non-zero exit code.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ModelError {
        throw CommandError(error.message)
    } catch let error as TensorFileError {
        throw CommandError(error.description)
    } catch let error as TokenizerError {
        throw CommandError(error.message)
    }
}
