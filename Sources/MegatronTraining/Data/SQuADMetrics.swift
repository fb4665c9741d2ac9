import Foundation

/// Exact match and F1 as the official SQuAD v2.0 evaluation script computes them: answers normalised (lower case,
/// ASCII punctuation removed, the articles "a", "an", "the" removed as whole words, whitespace collapsed), F1 over
/// the normalised words (a multiset), each prediction scored against its best gold answer; a question without gold
/// answers (or with only answers that normalise to nothing) has "" as its one gold answer.
///
/// ```swift
/// SQuADMetrics.exact(gold: "The Eiffel Tower", predicted: "eiffel tower")  // 1
/// SQuADMetrics.f1(gold: "Eiffel Tower", predicted: "the tower")             // 0.666…
/// let scores = SQuADMetrics.scores(gold: [["Paris"], []], predicted: ["paris", ""])
/// scores["exact"]  // 100; also f1, total, HasAns_exact, HasAns_f1, HasAns_total, NoAns_…
/// ```
public enum SQuADMetrics {
    /// The answer as the script normalises it.
    public static func normalize(_ text: String) -> String {
        let lowered = pythonLower(text)
        let unpunctuated = lowered.filter { !(($0.value < 128) && punctuation.contains($0)) }
        return pythonSplit(removingArticles(Array(unpunctuated))).joined(separator: " ")
    }

    /// 1 when the normalised answers are equal, else 0.
    public static func exact(gold: String, predicted: String) -> Double { normalize(gold) == normalize(predicted) ? 1 : 0 }

    /// The F1 of the normalised words; 1 when both are empty, 0 when one is.
    public static func f1(gold: String, predicted: String) -> Double {
        let goldWords = gold.isEmpty ? [] : pythonSplit(Array(normalize(gold).unicodeScalars))
        let predictedWords = predicted.isEmpty ? [] : pythonSplit(Array(normalize(predicted).unicodeScalars))
        if goldWords.isEmpty || predictedWords.isEmpty { return goldWords == predictedWords ? 1 : 0 }
        var counts: [String: Int] = [:]
        for word in goldWords { counts[word, default: 0] += 1 }
        var same = 0
        for word in predictedWords where counts[word, default: 0] > 0 {
            counts[word]! -= 1
            same += 1
        }
        guard same > 0 else { return 0 }
        let precision = Double(same) / Double(predictedWords.count), recall = Double(same) / Double(goldWords.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// The script's summary over questions, in percent: `exact`, `f1`, `total`, and for the questions with gold answers
    /// (`HasAns_…`) and without (`NoAns_…`) when there are any.
    public static func scores(gold: [[String]], predicted: [String]) -> [String: Double] {
        var exactScores: [Double] = [], f1Scores: [Double] = [], hasAnswer: [Bool] = []
        for (answers, prediction) in zip(gold, predicted) {
            let kept = answers.filter { !normalize($0).isEmpty }
            let golds = kept.isEmpty ? [""] : kept
            exactScores.append(golds.map { exact(gold: $0, predicted: prediction) }.max() ?? 0)
            f1Scores.append(golds.map { f1(gold: $0, predicted: prediction) }.max() ?? 0)
            hasAnswer.append(!answers.isEmpty)
        }
        var result: [String: Double] = [:]
        func add(_ prefix: String, _ indices: [Int]) {
            guard !indices.isEmpty else { return }
            result[prefix + "exact"] = 100 * indices.reduce(0) { $0 + exactScores[$1] } / Double(indices.count)
            result[prefix + "f1"] = 100 * indices.reduce(0) { $0 + f1Scores[$1] } / Double(indices.count)
            result[prefix + "total"] = Double(indices.count)
        }
        add("", Array(exactScores.indices))
        let has = hasAnswer.indices.filter { hasAnswer[$0] }, hasNot = hasAnswer.indices.filter { !hasAnswer[$0] }
        if !hasNot.isEmpty {
            add("HasAns_", has)
            add("NoAns_", hasNot)
        }
        return result
    }

    /// Python's `string.punctuation`.
    static let punctuation = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".unicodeScalars)

    /// Python's `str.lower()`: each scalar's full lower-case mapping, and a capital sigma at a word's end as the final
    /// sigma (ς) — preceded by a cased letter and not followed by one, case-ignorable scalars skipped.
    static func pythonLower(_ text: String) -> [Unicode.Scalar] {
        let scalars = Array(text.unicodeScalars)
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(scalars.count)
        for (i, scalar) in scalars.enumerated() {
            if scalar.value == 0x3A3 {
                var before = i - 1
                while before >= 0 && scalars[before].properties.isCaseIgnorable { before -= 1 }
                var after = i + 1
                while after < scalars.count && scalars[after].properties.isCaseIgnorable { after += 1 }
                let final = before >= 0 && scalars[before].properties.isCased && !(after < scalars.count && scalars[after].properties.isCased)
                result.append(final ? "\u{3C2}" : "\u{3C3}")
                continue
            }
            result += scalar.properties.lowercaseMapping.unicodeScalars
        }
        return result
    }

    /// Python's `str.isspace()`: White_Space, and the separators U+001C–U+001F that Python counts too.
    static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
    }

    /// Python's `\w` in a `re` pattern on `str`: letters, numbers (any numeric type) and "_".
    static func isPythonWord(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "_" { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return scalar.properties.numericType != nil
        }
    }

    /// `re.sub(r"\b(a|an|the)\b", " ", text)`.
    static func removingArticles(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = [], i = 0
        func word(_ j: Int) -> Bool { j >= 0 && j < scalars.count && isPythonWord(scalars[j]) }
        while i < scalars.count {
            if !word(i - 1) {
                // The alternatives in the pattern's order: "a" before "an", each needing a boundary after it.
                var matched = 0
                for article in ["a", "an", "the"] {
                    let letters = Array(article.unicodeScalars)
                    if i + letters.count <= scalars.count, Array(scalars[i..<(i + letters.count)]) == letters, !word(i + letters.count) {
                        matched = letters.count
                        break
                    }
                }
                if matched > 0 {
                    result.append(" ")
                    i += matched
                    continue
                }
            }
            result.append(scalars[i])
            i += 1
        }
        return result
    }

    /// Python's `str.split()`: the runs between whitespace.
    static func pythonSplit(_ scalars: [Unicode.Scalar]) -> [String] {
        var words: [String] = [], current = String.UnicodeScalarView()
        for scalar in scalars {
            if isPythonSpace(scalar) {
                if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(String(current)) }
        return words
    }
}
