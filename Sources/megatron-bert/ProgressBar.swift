import Foundation

/// A one-line progress display on standard error — count, rate and ETA — shown only when standard error
/// is a terminal and the user did not ask for quiet.
final class ProgressBar: @unchecked Sendable {
    let total: Int?
    let unit: String
    let enabled: Bool
    private let started = Date()
    private var lastDraw = Date.distantPast
    private(set) var done = 0
    /// Shown after the count, rate and ETA (a training run's epoch, loss and learning rate).
    var detail = ""

    init(total: Int?, unit: String, quiet: Bool) {
        self.total = total
        self.unit = unit
        enabled = Self.shown(quiet: quiet)
    }

    /// Whether a bar would be drawn: standard error is a terminal and the user did not ask for quiet.
    static func shown(quiet: Bool) -> Bool { !quiet && isatty(STDERR_FILENO) == 1 }

    /// Adds finished items and redraws (at most ten times a second).
    func advance(by count: Int) {
        done += count
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
        lastDraw = Date()
        Console.error("\r" + line() + "\u{1B}[K")
    }

    /// Ends the line.
    func finish() {
        guard enabled, done > 0 else { return }
        Console.error("\r" + line() + "\u{1B}[K\n")
    }

    func line() -> String {
        let seconds = max(Date().timeIntervalSince(started), 1e-3)
        let rate = Double(done) / seconds
        var text = String(format: "%d", done)
        if let total, total > 0 {
            let fraction = min(Double(done) / Double(total), 1)
            let filled = Int(fraction * 24)
            let eta = rate > 0 ? Double(total - done) / rate : 0
            text = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 24 - filled) + "] "
                + String(format: "%d/%d %@ %.1f/s ETA %@", done, total, unit, rate, Self.clock(eta))
        } else {
            text += String(format: " %@ %.1f/s %@", unit, rate, Self.clock(seconds))
        }
        return detail.isEmpty ? text : text + "  " + detail
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    /// A download callback drawing bytes done of total.
    static func download(quiet: Bool) -> @Sendable (Int64, Int64?) -> Void {
        let show = !quiet && isatty(STDERR_FILENO) == 1
        return { done, total in
            guard show else { return }
            let mb = Double(done) / 1_048_576
            if let total, total > 0 {
                let fraction = Double(done) / Double(total)
                let bar = String(repeating: "#", count: Int(fraction * 30)) + String(repeating: ".", count: 30 - Int(fraction * 30))
                Console.error(String(format: "\r[%@] %5.1f%% %8.1f MB", bar, fraction * 100, mb))
                if done >= total { Console.error("\n") }
            } else {
                Console.error(String(format: "\r%8.1f MB", mb))
            }
        }
    }
}
