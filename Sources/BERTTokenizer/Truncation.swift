/// How a text (or pair) over `maxLength` is cut, exactly as Hugging Face's `tokenizers` does it
/// (`truncate_encodings` and `Encoding::truncate`, version 0.23): which tokens each text keeps, and the
/// overflowing windows (with `stride` tokens of overlap) and the order they come out in.
struct Truncation {
    /// The windows, each as the ranges of the first and second text's tokens it holds, in HF's order.
    var windows: [(first: Range<Int>, second: Range<Int>)]

    /// - Parameters:
    ///   - first, second: how many tokens each text has (`second` nil for a single text).
    ///   - maxLength: the most tokens, special tokens included (nil: no limit).
    ///   - stride: tokens each overflowing window repeats from the one before it.
    ///   - overflow: whether the windows after the first are wanted; when they are, a window may never hold
    ///     more than `maxLength` tokens (HF would put a whole text into one when a text is cut to nothing).
    init(first n1: Int, second n2: Int?, maxLength: Int?, strategy: TruncationStrategy, stride: Int,
         overflow: Bool) throws {
        guard stride >= 0 else { throw TokenizerError("stride must not be negative (it is \(stride))") }
        guard let maxLength, strategy != .doNotTruncate else {
            windows = [(0..<n1, 0..<(n2 ?? 0))]
            return
        }
        let specials = n2 == nil ? 2 : 3
        guard maxLength >= specials else {
            // HF silently leaves such an input uncut (longer than max_length); we refuse instead.
            throw TokenizerError("max_length \(maxLength) cannot hold the \(specials) special tokens of \(n2 == nil ? "one text" : "a pair"); use at least \(specials)")
        }
        // HF checks this when truncation is set up, against a single text's special tokens, whatever the input.
        guard stride <= maxLength - 2 else {
            throw TokenizerError("stride \(stride) is larger than max_length \(maxLength) minus the 2 special tokens; use a stride of at most \(maxLength - 2)")
        }
        let budget = maxLength - specials
        /// Counts over max_length may be where tokenizing stopped: said as "more than".
        func tokens(_ n: Int) -> String { n > maxLength ? "more than \(maxLength) tokens" : "\(n) tokens" }
        var keep1 = n1, keep2 = n2 ?? 0
        if budget == 0 {
            // HF cuts both texts to nothing here, whatever the strategy.
            keep1 = 0
            keep2 = 0
        } else if n1 + (n2 ?? 0) > budget {
            let excess = n1 + (n2 ?? 0) - budget
            switch strategy {
            case .longestFirst:
                if let n2 {
                    // The shorter text keeps what fits beside the other's half; when neither fits its half,
                    // both get half and the odd token goes to the longer (the second on a tie).
                    let swap = n1 > n2
                    var short = min(n1, n2), long: Int
                    long = short > budget ? short : max(short, budget - short)
                    if short + long > budget {
                        short = budget / 2
                        long = short + budget % 2
                    }
                    (keep1, keep2) = swap ? (long, short) : (short, long)
                } else {
                    keep1 = budget
                }
            case .onlyFirst:
                guard n1 > excess else {
                    throw TokenizerError("only_first truncation cannot fit max_length \(maxLength): the second text alone takes \(tokens(n2 ?? 0)) of the \(budget) left beside the special tokens")
                }
                keep1 = n1 - excess
            case .onlySecond:
                guard let n2 else {
                    throw TokenizerError("only_second truncation needs a second text, and there is none (the text has \(tokens(n1)), over the \(budget) that max_length \(maxLength) leaves); use longest_first or only_first, or give a pair")
                }
                guard n2 > excess else {
                    throw TokenizerError("only_second truncation cannot fit max_length \(maxLength): the first text alone takes \(tokens(n1)) of the \(budget) left beside the special tokens")
                }
                keep2 = n2 - excess
            case .doNotTruncate:
                break
            }
        }
        let first = try Truncation.parts(count: n1, keep: keep1, stride: stride, overflow: overflow, text: "first")
        guard n2 != nil else {
            windows = first.map { ($0, 0..<0) }
            return
        }
        let second = try Truncation.parts(count: n2 ?? 0, keep: keep2, stride: stride, overflow: overflow, text: "second")
        // HF's `Encoding::merge_with`: the first windows of both, then each later first-text window with every
        // second-text window, then the first first-text window with every later second-text window.
        var windows = [(first[0], second[0])]
        for a in first.dropFirst() {
            for b in second { windows.append((a, b)) }
        }
        for b in second.dropFirst() { windows.append((first[0], b)) }
        self.windows = windows
    }

    /// `Encoding::truncate(keep, stride)`: the kept part first, then the overflowing parts, each starting
    /// `keep - stride` tokens after the one before, the last ending at the text's end.
    static func parts(count: Int, keep: Int, stride: Int, overflow: Bool, text: String) throws -> [Range<Int>] {
        guard keep < count else { return [0..<count] }
        guard keep > 0 else {
            guard !overflow else {
                throw TokenizerError("max_length leaves the \(text) text no tokens, so its overflowing window would hold all \(count) of them; use a larger max_length")
            }
            return [0..<0]
        }
        guard stride < keep else {
            throw TokenizerError("stride \(stride) must be smaller than the \(keep) tokens the \(text) text keeps in a window (max_length minus the special tokens and the other text); use a smaller stride or a larger max_length")
        }
        guard overflow else { return [0..<keep] }
        var parts: [Range<Int>] = []
        var start = 0
        while true {
            let end = min(start + keep, count)
            parts.append(start..<end)
            if end == count { return parts }
            start += keep - stride
        }
    }
}
