// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "MegatronBERT",
    products: [
        .library(name: "MegatronBERT", targets: ["MegatronBERT"]),
        .library(name: "MegatronModel", targets: ["MegatronModel"]),
        .library(name: "MegatronBackend", targets: ["MegatronBackend"]),
        .library(name: "MegatronCPU", targets: ["MegatronCPU"]),
        .library(name: "MegatronCUDA", targets: ["MegatronCUDA"]),
        .library(name: "TensorFiles", targets: ["TensorFiles"]),
        .library(name: "BERTTokenizer", targets: ["BERTTokenizer"]),
        .executable(name: "megatron-bert", targets: ["megatron-bert"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // OpenBLAS through its C header; Debian/Ubuntu: `apt-get install libopenblas-dev`.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // zlib's inflate and CRC-32 through its C header; Debian/Ubuntu: `apt-get install zlib1g-dev`.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // A stored tensor's bytes and number formats (FP16 / BF16 ⇄ FP32): what checkpoint readers produce and backends
        // take. Foundation only.
        .target(name: "TensorStorage"),
        // Checkpoint bytes: safetensors, PyTorch zip archives (zlib for deflated entries), the pickle machine.
        .target(name: "TensorFiles", dependencies: ["TensorStorage", "CZlib"]),
        // WordPiece tokenization with Hugging Face's semantics. No dependencies.
        .target(name: "BERTTokenizer"),
        // oneDNN (the library PyTorch uses on CPU): matrix products on weights packed once, with run-time dispatch
        // to AVX2 / AVX-512 / VNNI / BF16 / AMX; Debian/Ubuntu: `apt-get install libdnnl-dev`.
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        // Our own products, chosen at run time: few rows on plain FP32 weights (AVX2 + FMA) and on oneDNN's panels
        // (AVX-512); int8 on panels for CPUs without VNNI (AVX2), its epilogue from CQuantizedRows fused.
        .target(name: "CSmallProducts", dependencies: ["CQuantizedRows"]),
        // e^x on the compiler's vector types, as VectorMath.exp: one header for the C kernels that need it.
        .target(name: "CVectorMath"),
        // The int8 path's per-row quantization and its way back to floats, AVX-512 / AVX2 / plain C chosen at run
        // time. Plain C.
        .target(name: "CQuantizedRows", dependencies: ["CVectorMath"]),
        // BF16 weights packed by oneDNN widened to its FP32 layout, for CPUs whose BF16 dot products are slower than
        // FP32 ones. Plain C (AVX-512 chosen at run time), no dependencies.
        .target(name: "CPackedBF16"),
        // Attention of one head of one sequence with its scores in the core's cache (AVX-512 / AVX2 chosen at run
        // time). Plain C.
        .target(name: "CAttention", dependencies: ["CVectorMath"]),
        // The Backend seam: the protocol, host tensors, DType, activations and what a backend can do (capabilities).
        // Foundation only (and TensorStorage, itself Foundation only): a new backend is a sibling target of the two below.
        .target(name: "MegatronBackend", dependencies: ["TensorStorage"]),
        // The CPU backend (the reference) with its kernels and libraries.
        .target(name: "MegatronCPU", dependencies: ["MegatronBackend", "COpenBLAS", "CDNNL", "CSmallProducts", "CQuantizedRows", "CPackedBF16", "CAttention"]),
        // The CUDA backend: the driver, cuBLASLt and NVRTC opened at run time (no CUDA toolkit to build, one binary
        // for machines with and without a GPU), kernels compiled by NVRTC for the GPU at hand.
        // Its kernels are the .cu files of Sources/MegatronCUDA/Kernels, embedded at build time (EmbedCUDAKernels).
        .target(name: "MegatronCUDA", dependencies: ["MegatronBackend"],
                plugins: ["EmbedCUDAKernels"]),
        // Writes the kernel files into one Swift file of string constants (the plugin's tool).
        .executableTarget(name: "embed-kernels"),
        .plugin(name: "EmbedCUDAKernels", capability: .buildTool(), dependencies: ["embed-kernels"]),
        // The reference backend (plain loops in Double) and the operation-by-operation parity checks every backend is
        // held to (`megatron-bert test-ops`, ggml's test-backend-ops for this protocol).
        .target(name: "MegatronBackendChecks", dependencies: ["MegatronBackend"]),
        // The model (written once against Backend), its heads, checkpoints and tasks. Sees the protocol only.
        .target(name: "MegatronModel", dependencies: ["MegatronBackend", "TensorFiles", "BERTTokenizer"]),
        // Training beside inference: forward/backward pairs per layer on FP32 master parameters, losses, (next) the
        // optimizer and the trainer. Sees the Backend seam's protocols (MatrixProducts) and the model's loaders only.
        // Training's element-wise kernels (the optimizer's update, GELU with its derivative) with AVX-512 / AVX2 chosen
        // at run time. Plain C.
        .target(name: "CTrainingKernels", dependencies: ["CVectorMath"]),
        .target(name: "MegatronTraining", dependencies: ["MegatronModel", "MegatronBackend", "TensorFiles", "BERTTokenizer", "CTrainingKernels"]),
        // The one place that knows every backend: `Device` opens one; re-exports the model and the backends, so that
        // `import MegatronBERT` is the whole library.
        .target(name: "MegatronBERT", dependencies: ["MegatronModel", "MegatronTraining", "MegatronCPU", "MegatronCUDA"]),
        // `megatron-bert serve`: text-embeddings-inference's HTTP API on Hummingbird 2, one batch queue for every route.
        .target(
            name: "MegatronServer",
            dependencies: [
                "MegatronBERT", "BERTTokenizer", "TensorFiles",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                // TEI's gRPC API (--grpc-port); the code generated from proto/tei.proto is committed.
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "megatron-bert",
            dependencies: [
                "MegatronBERT",
                "MegatronBackendChecks",
                "MegatronServer",
                "BERTTokenizer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The seeded byte mutator the fuzz tests of every target share.
        .target(name: "TestSupport", dependencies: ["MegatronBackend"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorFilesTests", dependencies: ["TensorFiles", "CZlib", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "MegatronBackendTests", dependencies: ["MegatronBackend"]),
        .testTarget(name: "MegatronBackendChecksTests", dependencies: ["MegatronBackendChecks", "MegatronCPU"]),
        .testTarget(name: "MegatronCPUTests", dependencies: ["MegatronCPU", "CSmallProducts", "CQuantizedRows", "CPackedBF16", "CAttention", "TensorFiles"]),
        .testTarget(name: "MegatronCUDATests", dependencies: ["MegatronCUDA", "MegatronCPU", "TensorFiles", "TestSupport"]),
        .testTarget(name: "BERTTokenizerTests", dependencies: ["BERTTokenizer", "TensorFiles", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "MegatronBERTTests",
            dependencies: ["MegatronBERT", "MegatronModel", "MegatronBackendChecks", "TensorFiles", "BERTTokenizer", "TestSupport"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "MegatronTrainingTests", dependencies: ["MegatronTraining", "MegatronModel", "MegatronCPU", "TensorFiles", "CTrainingKernels"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "MegatronServerTests", dependencies: ["MegatronServer", "MegatronBERT", "BERTTokenizer"]),
        // Runs the built executable end to end.
        .testTarget(name: "megatron-bertTests", dependencies: ["megatron-bert", "TensorFiles", "BERTTokenizer", "TestSupport"]),
    ],
    // Swift 5 mode: the compute kernels share raw buffers across Dispatch workers by design.
    swiftLanguageModes: [.v5]
)
