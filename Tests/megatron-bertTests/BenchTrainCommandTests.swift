import Foundation
import Testing

/// `bench-train` runs training steps on a checkpoint's own head, whatever its problem type, and says what it measured.
@Suite struct BenchTrainCommandTests {
    @Test(arguments: ["megatron-single", "megatron-regression", "bert-multilabel"])
    func itTimesStepsOfEveryHeadKind(model: String) throws {
        let path = CLI.packageRoot + "/Tests/MegatronTrainingTests/Fixtures/" + model
        let ran = try CLI.run(["bench-train", "--model", path, "--points", "2x8", "--min-seconds", "0", "--min-runs", "2", "--json"])
        #expect(ran.status == 0, "\(ran.stderr)")
        let line = try #require(try JSONSerialization.jsonObject(with: Data(ran.stdout.utf8)) as? [String: Any])
        #expect(line["runs"] as? Int == 2 && (line["tokens_per_second"] as? Double ?? 0) > 0, "\(ran.stdout)")
        #expect(line["precision"] as? String == "fp32" && line["recomputed"] as? Bool == false, "\(ran.stdout)")
        let recomputed = try CLI.run(["bench-train", "--model", path, "--points", "2x8", "--min-seconds", "0", "--min-runs", "1", "--json",
                                      "--gradient-checkpointing"])
        #expect((try JSONSerialization.jsonObject(with: Data(recomputed.stdout.utf8)) as? [String: Any])?["recomputed"] as? Bool == true,
                "\(recomputed.stdout) \(recomputed.stderr)")
        let refused = try CLI.run(["bench-train", "--model", path, "--points", "2x1"])
        #expect(refused.status != 0 && refused.stderr.contains("the sequence at least 2"), "\(refused.stderr)")
    }
}
