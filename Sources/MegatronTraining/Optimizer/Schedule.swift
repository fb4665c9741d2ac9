import Foundation

/// The learning rate at each optimizer step, as transformers' schedulers give it (`get_linear_schedule_with_warmup`,
/// `get_cosine_schedule_with_warmup`, `get_constant_schedule_with_warmup`): a linear warmup from 0 over
/// `warmupSteps`, then linear decay to 0 at `totalSteps`, half a cosine to 0, or constant. Step t (from 0) is the
/// t-th optimizer step, as the Trainer steps the scheduler after the optimizer (so a warmup's first step has rate 0).
///
/// ```swift
/// let schedule = Schedule(.linear, peak: 5e-5, warmupSteps: 10, totalSteps: 100)
/// schedule.rate(at: 0)   // 0
/// schedule.rate(at: 10)  // 5e-5
/// ```
public struct Schedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable { case linear, cosine, constant }

    public var kind: Kind
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(_ kind: Kind, peak: Double, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step) / Double(max(1, warmupSteps)) }
        switch kind {
        case .constant:
            return peak
        case .linear:
            return peak * max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return peak * max(0, 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress)))
        }
    }
}
