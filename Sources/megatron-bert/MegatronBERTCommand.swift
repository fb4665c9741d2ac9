import ArgumentParser
import Foundation
import MegatronBERT
import BERTTokenizer
import TensorFiles
#if canImport(Glibc)
import Glibc
#endif

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
        version: MegatronBERTVersion.current,
        subcommands: [
            FillMaskCommand.self, NextSentenceCommand.self, EmbedCommand.self, SimilarityCommand.self, ClassifyCommand.self,
            NERCommand.self, QACommand.self, MultipleChoiceCommand.self, InfoCommand.self, TokenizeCommand.self,
            FinetuneCommand.self, ServeCommand.self, TasksCommand.self, ForwardCommand.self, BenchCommand.self, BenchTrainCommand.self, TestOpsCommand.self, InspectCommand.self, ConvertCommand.self,
            DownloadCommand.self,
        ]
    )

    /// Runs the command with checked output: writes that fail end the command with a message (see `Console`),
    /// and a closed pipe is a quiet end rather than SIGPIPE.
    static func main() {
        reexecWithBetterOpenBLASKernels()
        signal(SIGPIPE, SIG_IGN)
        _ = Settings.current  // every setting read once, before anything runs
        if let path = Settings.current[.peakMemoryFile] {
            peakMemoryFile = path
            atexit { recordPeakMemory() }
        }
        do {
            var command = try parseAsRoot()
            try command.run()
            Console.flush()
            Glibc.exit(0)
        } catch {
            Console.flush()
            exit(withError: error)
        }
    }
}

extension DType: ExpressibleByArgument {
    /// The help of every `--dtype` that runs a model.
    static let help: ArgumentHelp = """
        Weight precision: fp32; fp16 (half the memory, multiplied in FP32); bf16 (multiplied in BF16 where the CPU \
        has AVX512_BF16 or AMX, else in FP32); int8 (dynamic quantization as PyTorch's quantize_dynamic: int8 \
        weights per output channel, inputs quantized per token, int32 sums; a quarter of the memory).
        """
}

/// A failure to report as "Error: <message>" with exit code 1 (no usage text: the command line was fine).
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// A whole input file's bytes, or standard input's for "-", read once as a stream (pipes, /dev/stdin and
/// `<(…)` work), and refused past `limit` bytes (so /dev/zero or a huge file is an error, not a hang).
func readInput(_ path: String, what: String, limit: Int) throws -> Data {
    let handle: FileHandle
    if path == "-" {
        handle = FileHandle.standardInput
    } else {
        try checkReadable(path, what: what)
        guard let file = FileHandle(forReadingAtPath: path) else { throw CommandError("cannot open \(what) \(path)") }
        handle = file
    }
    defer { if path != "-" { try? handle.close() } }
    var data = Data()
    while true {
        let block: Data?
        do { block = try handle.read(upToCount: 1 << 20) } catch {
            throw CommandError("reading \(what) \(path == "-" ? "from standard input" : path) failed: \(describe(error))")
        }
        guard let block, !block.isEmpty else { return data }
        guard data.count + block.count <= limit else {
            throw CommandError("\(what) \(path == "-" ? "on standard input" : path) is larger than \(MemoryBudget.describe(limit)), more than this command reads at once")
        }
        data.append(block)
    }
}

/// Throws a clear error unless `path` names something that can be read as a file: it exists (symlinks resolved,
/// a loop said as such), is not a directory, and is readable.
func checkReadable(_ path: String, what: String) throws {
    var info = stat()
    guard stat(path, &info) == 0 else {
        let reason = errno == ELOOP ? "it is a loop of symbolic links" : errno == ENOENT ? "it does not exist" : String(cString: strerror(errno))
        throw CommandError("cannot read \(what) \(path): \(reason)")
    }
    if info.st_mode & S_IFMT == S_IFDIR { throw CommandError("\(what) \(path) is a directory; give a file") }
    guard access(path, R_OK) == 0 else { throw CommandError("cannot read \(what) \(path): \(String(cString: strerror(errno)))") }
}

/// A Foundation error's own words (`The file … couldn't be opened …`), not a domain and code dump.
func describe(_ error: Error) -> String {
    switch error {
    case let e as ModelError: return e.message
    case let e as TensorFileError: return e.description
    case let e as TokenizerError: return e.message
    case let e as CommandError: return e.description
    case let e as BackendError: return e.description
    case let e as TrainingError: return e.description
    default: break
    }
    let ns = error as NSError
    if ns.domain == NSURLErrorDomain, ns.code == NSURLErrorTimedOut { return "the server did not answer in time" }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
       let code = POSIXErrorCode(rawValue: Int32(underlying.code)) {
        return String(cString: strerror(code.rawValue))
    }
    return ns.localizedDescription
}

/// Starts this program again with `OPENBLAS_CORETYPE` set when OpenBLAS did not recognise the CPU and chose slow
/// kernels (see `Runtime.betterOpenBLASCore`); once at most, and never when the user set `OPENBLAS_CORETYPE`.
func reexecWithBetterOpenBLASKernels() {
    guard getenv("OPENBLAS_CORETYPE") == nil, let core = Runtime.betterOpenBLASCore() else { return }
    setenv("OPENBLAS_CORETYPE", core, 1)
    let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
    execv("/proc/self/exe", arguments)
    // execv returned: it failed; run on with the kernels OpenBLAS chose.
}

/// Where to append this process's peak resident memory at exit (`MEGATRON_BERT_PEAK_MEMORY_FILE`, a diagnostic the
/// reliability tests and scripts/hostile.py read).
nonisolated(unsafe) var peakMemoryFile: String?

func recordPeakMemory() {
    guard let path = peakMemoryFile else { return }
    let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    guard descriptor >= 0 else { return }
    let line = Array("\(System.peakResidentBytes)\n".utf8)
    _ = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
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
    } catch let error as CommandError {
        throw error
    } catch let error as ExitCode {
        throw error
    } catch {
        throw CommandError(describe(error))  // a Foundation error in words, not a domain and code
    }
}
