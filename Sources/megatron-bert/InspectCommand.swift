import ArgumentParser
import Foundation
import MegatronBERT
import TensorFiles

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors (name, dtype, shape) of a .safetensors, .bin/.pt or NGC .zip file, and a checkpoint's args.",
        discussion: """
        Nothing in a pickle is executed: classes that exist only in Python or Megatron are shown as data.

        Example:
          megatron-bert inspect megatron_bert_345m_v0.1_cased.zip
        """
    )

    @Argument(help: "The file to inspect.")
    var file: String

    func run() throws {
        try reportingErrors {
            let mapped = try MappedFile(path: file)
            var tensors: [String: StoredTensor]
            var root: PickleValue?
            if file.hasSuffix(".safetensors") {
                tensors = try SafeTensorsFile(bytes: mapped.bytes, owner: mapped, path: file).tensors
            } else if let zip = try? ZipArchive(bytes: mapped.bytes, path: file),
                      let inner = zip.entries.first(where: { $0.name.hasSuffix(".pt") && !$0.name.hasSuffix("/data.pkl") }),
                      !zip.entries.contains(where: { $0.name.hasSuffix("data.pkl") }) {
                Console.line("\(file): zip holding \(inner.name)")
                let contents = try zip.contents(of: inner)
                let checkpoint = try TorchCheckpoint(bytes: contents.bytes, owner: contents.owner ?? mapped, path: inner.name)
                tensors = checkpoint.tensors
                root = checkpoint.root
            } else {
                let checkpoint = try TorchCheckpoint(bytes: mapped.bytes, owner: mapped, path: file)
                tensors = checkpoint.tensors
                root = checkpoint.root
            }
            if case .dict(let top)? = root {
                for (key, value) in top.items {
                    guard let name = key.string else { continue }
                    switch value {
                    case .dict: continue  // tensors, listed below
                    case .object(let object) where name == "args":
                        Console.line("args (\(object.module).\(object.name)):")
                        if case .dict(let attributes) = object.state {
                            for (k, v) in attributes.items { Console.line("  \(k.string ?? k.description) = \(v)") }
                        }
                    default:
                        Console.line("\(name) = \(value)")
                    }
                }
            }
            var parameters = 0
            for (name, t) in tensors.sorted(by: { $0.key < $1.key }) {
                parameters += t.count
                Console.line("\(name)  \(t.dtype.rawValue)  \(t.shape)")
            }
            Console.line("\(tensors.count) tensors, \(parameters) elements")
        }
    }
}
