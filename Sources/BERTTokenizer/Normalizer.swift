import Foundation

/// BERT's normaliser (`BertNormalizer` in Hugging Face `tokenizers`): text cleaning, spaces around CJK
/// ideographs, optional accent stripping and lowercasing. It keeps, for every output scalar, the index of
/// the input scalar it came from, so tokens can point back into the original text.
struct Normalizer: Sendable {
    var cleanText = true
    var handleChineseCharacters = true
    var stripAccents = false
    var lowercase = false

    /// What one input scalar becomes, appended to `output`: nothing (removed), itself, several scalars
    /// (accents stripped, lowercase mappings), or itself between spaces (a CJK ideograph).
    @inline(__always)
    func normalize(_ scalar: Unicode.Scalar, into output: inout [Unicode.Scalar]) {
        var c = scalar
        if cleanText {
            let kind = CharacterClasses.of(c)
            if kind.contains(.removed) { return }
            if kind.contains(.whitespace) { c = " " }
        }
        if handleChineseCharacters && CharacterClasses.isChinese(c) {
            output.append(" ")
            output.append(c)
            output.append(" ")
            return
        }
        if c.isASCII {
            output.append(lowercase && c.properties.isUppercase ? Unicode.Scalar(UInt8(c.value + 32)) : c)
            return
        }
        guard stripAccents || lowercase else {
            output.append(c)
            return
        }
        var pieces: [Unicode.Scalar] = [c]
        if stripAccents {
            pieces = String(Character(c)).decomposedStringWithCanonicalMapping.unicodeScalars
                .filter { !CharacterClasses.isNonSpacingMark($0) }
        }
        if lowercase {
            pieces = pieces.flatMap { Array($0.properties.lowercaseMapping.unicodeScalars) }
        }
        output += pieces
    }
}
