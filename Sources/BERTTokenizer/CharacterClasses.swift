/// The character classes of BERT's normaliser and pre-tokeniser, as Hugging Face `tokenizers` defines them.
/// ASCII answers come from a 128-entry table; only other scalars consult the Unicode properties.
enum CharacterClasses {
    private static let asciiRemoved: [Bool] = (0..<128).map { v in v == 0 || (v < 32 && v != 9 && v != 10 && v != 13) || v == 127 }
    private static let asciiWhitespace: [Bool] = (0..<128).map { v in v == 32 || (9...13).contains(v) }
    private static let asciiPunctuation: [Bool] = (0..<128).map { v in
        (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
    }

    /// Removed by text cleaning: NUL, U+FFFD and control characters (category C*) other than \t \n \r.
    static func isRemoved(_ c: Unicode.Scalar) -> Bool {
        if c.value < 128 { return asciiRemoved[Int(c.value)] }
        if c.value == 0xFFFD { return true }
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// Whitespace: \t \n \r and Unicode's White_Space property (what Rust's `char::is_whitespace` tests).
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        if c.value < 128 { return asciiWhitespace[Int(c.value)] }
        return c.properties.isWhitespace
    }

    /// Punctuation: ASCII punctuation and symbols (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) or Unicode category P*.
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        if c.value < 128 { return asciiPunctuation[Int(c.value)] }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// CJK ideographs, which BERT surrounds with spaces so each becomes its own word.
    static func isChinese(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }

    /// Combining marks removed by accent stripping (category Mn).
    static func isNonSpacingMark(_ c: Unicode.Scalar) -> Bool {
        c.properties.generalCategory == .nonspacingMark
    }
}
