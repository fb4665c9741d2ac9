import Testing
@testable import megatron_bert

@Suite struct ProgressBarTests {
    @Test func showsCountRateAndETA() {
        let known = ProgressBar(total: 200, unit: "inputs", quiet: true)
        known.advance(by: 50)
        let line = known.line()
        #expect(line.hasPrefix("[######..................] 50/200 inputs "), "\(line)")
        #expect(line.contains("/s ETA "))
        let open = ProgressBar(total: nil, unit: "inputs", quiet: true)
        open.advance(by: 7)
        #expect(open.line().hasPrefix("7 inputs "))
        #expect(!known.enabled, "quiet (and not a terminal) draws nothing")
    }

    @Test func clockFormat() {
        #expect(ProgressBar.clock(5) == "0:05")
        #expect(ProgressBar.clock(125) == "2:05")
        #expect(ProgressBar.clock(3725) == "1:02:05")
    }
}
