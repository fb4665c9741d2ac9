import Foundation
import PackagePlugin

/// Embeds the CUDA kernels (the `.cu` and `.cuh` files of the target it is applied to, in its `Kernels/`) in the binary
/// at build time: `embed-kernels` writes them into one Swift file, `CUDAKernelFiles`, a string constant per file, so
/// that NVRTC compiles the very files that scripts/check_fused_attention.py runs on the CPU, and the binary needs no
/// resource folder beside it. A kernel file changed is a rebuild of that one generated file.
@main
struct EmbedCUDAKernels: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        guard let module = target as? SourceModuleTarget else { return [] }
        let inputs = module.sourceFiles.map(\.url).filter { ["cu", "cuh"].contains($0.pathExtension) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "CUDAKernelFiles.swift")
        return [.buildCommand(displayName: "Embedding \(inputs.count) CUDA kernel files in \(target.name)",
                              executable: try context.tool(named: "embed-kernels").url,
                              arguments: [output.path()] + inputs.map { $0.path() },
                              inputFiles: inputs, outputFiles: [output])]
    }
}
