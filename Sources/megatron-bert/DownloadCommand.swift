import ArgumentParser
import Foundation
import MegatronBERT

struct DownloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Fetch NVIDIA's Megatron-BERT 345M checkpoint from NGC, convert it, and cache it.",
        discussion: """
        The zip goes to the cache (~/.cache/megatron-bert, or $MEGATRON_BERT_CACHE, or --cache-dir); an interrupted \
        download resumes from its .part file. The converted Hugging Face directory is printed on the last line, ready \
        for --model. Offline, it fails at once and prints the manual steps.

        Example:
          megatron-bert download cased --vocab vocab/megatron-bert-cased-vocab.txt
        """
    )

    @Argument(help: "cased or uncased.")
    var variant: String = "cased"

    @Option(help: "The NGC versions URL (for mirrors and tests).")
    var baseURL: String = ModelDownload.defaultBaseURL

    @Option(help: "The cache directory.")
    var cacheDir: String?

    @Option(help: "A vocab.txt to place beside the converted model.")
    var vocab: String?

    @Flag(help: "No progress bar.")
    var quiet = false

    func run() throws {
        try reportingErrors {
            guard let variant = ModelDownload.Variant(rawValue: variant) else {
                throw CommandError("unknown variant \(self.variant): use cased or uncased")
            }
            let download = ModelDownload(variant: variant, baseURL: baseURL, cacheDirectory: cacheDir)
            let directory = try download.run(vocabulary: vocab, progress: ProgressBar.download(quiet: quiet))
            Console.line(directory)
        }
    }
}
