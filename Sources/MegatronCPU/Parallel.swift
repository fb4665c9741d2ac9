import Dispatch
import Foundation
import Synchronization

/// Splits 0..<count into one contiguous range per core and runs them concurrently.
///
/// A forward pass runs hundreds of these splits one after another, many of them tens of microseconds long; waking a
/// Dispatch worker for each cost as much as the split saved (measured on 2 cores: two halves of 25 µs took ~45 µs
/// through `concurrentPerform`, ~25 µs through `SpinPool`). So the splits go to `SpinPool`'s helper threads, which
/// wait for the next one briefly before they sleep; a split made while the pool is busy (a nested or concurrent one)
/// goes to Dispatch.
enum Parallel {
    /// `System.threads()`: every core unless `MEGATRON_BERT_THREADS` says otherwise (an invalid value is refused by
    /// `Device.open` before any split runs; here it falls back to every core).
    static let cores = (try? System.threads()) ?? System.cores

    static func forEach(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = min(cores, max(1, count / max(minimumPerThread, 1)))
        if parts <= 1 {
            body(0..<count)
            return
        }
        let part = { (part: Int) in
            let lo = count * part / parts, hi = count * (part + 1) / parts
            if lo < hi { body(lo..<hi) }
        }
        if SpinPool.shared.run(parts, part) { return }
        DispatchQueue.concurrentPerform(iterations: parts, execute: part)
    }
}

/// One helper thread per core but the caller's: the caller publishes a job and runs part 0, helper i runs part i.
/// A helper spins on the job counter for a few tens of microseconds after its part (the next split usually comes
/// sooner), then sleeps on a condition until woken. One job at a time: `run` answers false while another runs.
final class SpinPool: @unchecked Sendable {
    static let shared = SpinPool(helpers: Parallel.cores - 1)

    private let generation = Atomic<Int>(0)  // bumped once per job
    private let unfinished = Atomic<Int>(0)  // helpers yet to finish the current job
    private let sleeping = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let condition = NSCondition()
    // Written by the caller before it bumps `generation`, read by the helpers after they see the bump.
    private var job: ((Int) -> Void)?
    private var parts = 0
    let helpers: Int

    /// Spins of a helper's wait before it sleeps (~20–40 µs).
    static let spins = 20_000

    init(helpers: Int) {
        self.helpers = max(0, helpers)
        for index in 0..<self.helpers {
            let thread = Thread { [unowned self] in self.serve(part: index + 1) }
            thread.name = "megatron-bert compute \(index + 1)"
            thread.start()
        }
    }

    /// Runs `body(part)` for part in 0..<parts (parts ≤ helpers + 1), part 0 on this thread; false, without running
    /// anything, when the pool is running another job or has too few helpers.
    func run(_ parts: Int, _ body: (Int) -> Void) -> Bool {
        guard parts <= helpers + 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { body in
            job = body
            self.parts = parts
            unfinished.store(helpers, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleeping.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }
            body(0)
            var spins = 0
            while unfinished.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > 2_000 { sched_yield() }  // a helper is not running: give it this core
            }
            job = nil
        }
        return true
    }

    private func serve(part: Int) {
        var seen = 0
        while true {
            var current = generation.load(ordering: .acquiring)
            var spins = 0
            while current == seen {
                spins += 1
                if spins < Self.spins {
                    current = generation.load(ordering: .acquiring)
                    continue
                }
                // Sleep; `run` bumps the generation before it reads `sleeping`, this thread counts itself before it
                // reads the generation (both sequentially consistent), so one of the two sees the other.
                condition.lock()
                sleeping.add(1, ordering: .sequentiallyConsistent)
                current = generation.load(ordering: .sequentiallyConsistent)
                while current == seen {
                    condition.wait()
                    current = generation.load(ordering: .sequentiallyConsistent)
                }
                sleeping.subtract(1, ordering: .sequentiallyConsistent)
                condition.unlock()
            }
            seen = current
            if part < parts, let job { job(part) }
            unfinished.subtract(1, ordering: .releasing)
        }
    }
}
