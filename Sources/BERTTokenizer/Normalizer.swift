import Foundation

/// BERT's normaliser (`BertNormalizer` in Hugging Face `tokenizers`): text cleaning, spaces around CJK
/// ideographs, optional accent stripping and lowercasing. It keeps, for every output scalar, the index of
/// the input scalar it came from, so tokens can point back into the original text.
struct Normalizer: Sendable {
    var cleanText = true
    var handleChineseCharacters = true
    var stripAccents = false
    var lowercase = false

    /// Normalises `input[range]`; `origin[k]` is the index in `input` that `scalars[k]` came from.
    func normalize(_ input: [Unicode.Scalar], _ range: Range<Int>, into scalars: inout [Unicode.Scalar], origin: inout [Int]) {
        for i in range {
            var c = input[i]
            if cleanText {
                if CharacterClasses.isRemoved(c) { continue }
                if CharacterClasses.isWhitespace(c) { c = " " }
            }
            if handleChineseCharacters && CharacterClasses.isChinese(c) {
                scalars += [" ", c, " "]
                origin += [i, i, i]
                continue
            }
            if c.isASCII {
                scalars.append(lowercase && c.properties.isUppercase ? Unicode.Scalar(c.value + 32)! : c)
                origin.append(i)
                continue
            }
            var pieces: [Unicode.Scalar] = [c]
            if stripAccents {
                pieces = String(Character(c)).decomposedStringWithCanonicalMapping.unicodeScalars
                    .filter { !CharacterClasses.isNonSpacingMark($0) }
            }
            if lowercase {
                pieces = pieces.flatMap { Array($0.properties.lowercaseMapping.unicodeScalars) }
            }
            scalars += pieces
            origin += Array(repeating: i, count: pieces.count)
        }
    }
}
