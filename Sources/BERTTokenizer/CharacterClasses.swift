/// The character classes of BERT's normaliser and pre-tokeniser, as Hugging Face `tokenizers` defines them.
/// Every scalar of the Basic Multilingual Plane is classified once into a 64 KB table; only scalars above
/// U+FFFF consult the Unicode properties each time.
enum CharacterClasses {
    struct Class: OptionSet {
        let rawValue: UInt8
        static let removed = Class(rawValue: 1)
        static let whitespace = Class(rawValue: 2)
        static let punctuation = Class(rawValue: 4)
        static let chinese = Class(rawValue: 8)
        static let nonSpacingMark = Class(rawValue: 16)
    }

    private static let basicPlane: [UInt8] = (0..<0x10000).map { v in
        guard let c = Unicode.Scalar(UInt32(v)) else { return Class.removed.rawValue }  // surrogates
        return classify(c).rawValue
    }

    @inline(__always)
    static func of(_ c: Unicode.Scalar) -> Class {
        c.value < 0x10000 ? Class(rawValue: basicPlane[Int(c.value)]) : classify(c)
    }

    static func classify(_ c: Unicode.Scalar) -> Class {
        var result: Class = []
        let v = c.value
        let category = c.properties.generalCategory
        // Removed by text cleaning: NUL, U+FFFD and control characters (category C*) other than \t \n \r.
        if v == 0 || v == 0xFFFD { result.insert(.removed) }
        if v != 9 && v != 10 && v != 13 {
            switch category {
            case .control, .format, .surrogate, .privateUse, .unassigned: result.insert(.removed)
            default: break
            }
        }
        // Whitespace: \t \n \r and Unicode's White_Space property (what Rust's `char::is_whitespace` tests).
        if v == 9 || v == 10 || v == 13 || c.properties.isWhitespace { result.insert(.whitespace) }
        // Punctuation: ASCII punctuation and symbols or Unicode category P*.
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            result.insert(.punctuation)
        }
        switch category {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: result.insert(.punctuation)
        case .nonspacingMark: result.insert(.nonSpacingMark)
        default: break
        }
        // CJK ideographs, which BERT surrounds with spaces so each becomes its own word.
        switch v {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: result.insert(.chinese)
        default: break
        }
        return result
    }

    static func isRemoved(_ c: Unicode.Scalar) -> Bool { of(c).contains(.removed) }
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool { of(c).contains(.whitespace) }
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool { of(c).contains(.punctuation) }
    static func isChinese(_ c: Unicode.Scalar) -> Bool { of(c).contains(.chinese) }
    static func isNonSpacingMark(_ c: Unicode.Scalar) -> Bool { of(c).contains(.nonSpacingMark) }
}
