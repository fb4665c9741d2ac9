import Dispatch

/// Splits 0..<count into one contiguous range per core and runs them concurrently.
enum Parallel {
    static let cores = System.cores

    static func forEach(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = min(cores, max(1, count / max(minimumPerThread, 1)))
        if parts <= 1 {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = count * part / parts, hi = count * (part + 1) / parts
            if lo < hi { body(lo..<hi) }
        }
    }
}
