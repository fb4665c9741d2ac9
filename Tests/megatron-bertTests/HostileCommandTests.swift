import Foundation
import Testing

/// Every hostile case of the reliability issue (scripts/hostile.py lists them: crafted pickles and zips, absurd
/// sizes, pipes and devices as input, full disks and closed pipes as output, bad JSON and flags, interrupted and
/// concurrent conversions), run against the release binary when it is built (scripts/test.sh builds it), else the
/// debug one. Each must end with its expected status and message, never by a signal, and its megatron-bert
/// processes must stay under the case's peak-memory bound (their own high-water mark, written at exit).
@Suite struct HostileCommandTests {
    struct Case: Decodable, Sendable, CustomStringConvertible {
        var name: String
        var command: String
        var status: Int32
        var text: String
        var max_rss_mb: Int
        var description: String { name }
    }

    static let script = CLI.packageRoot + "/scripts/hostile.py"

    static let cases: [Case] = {
        guard let result = try? Shell.run("python3 \"$ROOT/scripts/hostile.py\" list"),
              let cases = try? JSONDecoder().decode([Case].self, from: Data(result.stdout.utf8)) else { return [] }
        return cases
    }()

    /// The hostile inputs, written once per test run (under .build, so they never litter /tmp).
    static let inputs: String = {
        let directory = CLI.packageRoot + "/.build/test-cache/hostile"
        try? FileManager.default.removeItem(atPath: directory)
        _ = try? Shell.run("python3 \"$ROOT/scripts/hostile.py\" make \"\(directory)\"")
        return directory
    }()

    static let binary: String = {
        let release = CLI.packageRoot + "/.build/release/megatron-bert"
        return FileManager.default.isExecutableFile(atPath: release) ? release : CLI.executable
    }()

    @Test func theCasesAreListed() {
        #expect(Self.cases.count >= 30, "python3 scripts/hostile.py list gave \(Self.cases.count) cases")
    }

    @Test(arguments: cases)
    func hostileCase(_ hostile: Case) throws {
        let peakFile = Self.inputs + "/peak-\(UUID().uuidString)"
        let result = try Shell.run("export MB=\"\(Self.binary)\" H=\"\(Self.inputs)\" MEGATRON_BERT_PEAK_MEMORY_FILE=\"\(peakFile)\"; "
                                   + hostile.command)
        let output = result.stdout + result.stderr
        #expect(result.signal == nil && !output.contains("Segmentation fault") && !output.contains("Illegal instruction")
                && !output.contains("Fatal error"), "\(result)")
        #expect(result.status == hostile.status, "\(result)")
        #expect(output.contains(hostile.text), "\(result)")
        let peaks = ((try? String(contentsOfFile: peakFile, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int($0) }
        let peak = peaks.max() ?? 0
        #expect(peak <= hostile.max_rss_mb << 20, "peak \(peak >> 20) MB > \(hostile.max_rss_mb) MB")
    }
}
