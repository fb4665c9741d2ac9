import Foundation

// embed-kernels OUTPUT.swift FILE…: writes `enum CUDAKernelFiles` with each file's text as a static string, named after
// the file ("fused_attention.cu" → `fused_attention_cu`). Run by the EmbedCUDAKernels build plugin.
let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    FileHandle.standardError.write(Data("usage: embed-kernels OUTPUT.swift FILE...\n".utf8))
    exit(2)
}
var swift = "// Generated at build time by embed-kernels from Sources/MegatronCUDA/Kernels: edit those files, not this one.\n"
swift += "enum CUDAKernelFiles {\n"
for path in arguments.dropFirst() {
    let url = URL(fileURLWithPath: path)
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
        FileHandle.standardError.write(Data("embed-kernels: cannot read \(path) as UTF-8\n".utf8))
        exit(1)
    }
    // A raw string with more #s than any run of #s after a quote in the text, so that nothing in it ends the literal.
    var hashes = "#"
    while text.contains("\"" + hashes) || text.contains("\"\"\"" + hashes) { hashes += "#" }
    let name = url.lastPathComponent.map { $0.isLetter || $0.isNumber ? $0 : "_" }
    swift += "    /// \(url.lastPathComponent)\n    static let \(String(name)) = \(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes)\n"
}
swift += "}\n"
do {
    try swift.write(toFile: output, atomically: true, encoding: .utf8)
} catch {
    FileHandle.standardError.write(Data("embed-kernels: cannot write \(output): \(error)\n".utf8))
    exit(1)
}
