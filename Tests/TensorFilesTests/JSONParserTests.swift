import Foundation
import Testing
@testable import TensorFiles

@Suite struct JSONParserTests {
    static func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }
    static func parse(_ bytes: [UInt8]) throws -> JSONValue { try JSONValue.parse(Data(bytes)) }

    static func reason(_ body: () throws -> JSONValue) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    @Test func readsWhatPythonReads() throws {
        let value = try Self.parse(#"{"a": [1, -2.5, 1e3, true, false, null], "b": "x\"y\\z\u00e9\ud83d\ude00\n", "c": {}}"#)
        #expect(value["a"]?.array?.count == 6)
        #expect(value["a"]?.array?[2].int == 1000)
        #expect(value["b"]?.string == "x\"y\\zé😀\n")
        #expect(value["c"]?.object?.isEmpty == true)
        #expect(try Self.parse("\u{FEFF} [ ] ").array?.isEmpty == true)  // a byte order mark and spaces
    }

    /// Python's json keeps the last of a repeated key.
    @Test func aRepeatedKeyKeepsItsLastValue() throws {
        #expect(try Self.parse(#"{"text": "first", "text": "last"}"#)["text"]?.string == "last")
    }

    @Test func loneSurrogatesAreNamed() {
        #expect(Self.reason { try Self.parse(#""a\ud800b""#) }.contains("a lone UTF-16 surrogate \\uD800"))
        #expect(Self.reason { try Self.parse(#""\udc00""#) }.contains("lone UTF-16 surrogate \\uDC00"))
        #expect(Self.reason { try Self.parse(#""\ud800\u0041""#) }.contains("not a low surrogate"))
    }

    @Test func invalidUTF8IsNamedWithItsByte() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
                               [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22]] {
            #expect(Self.reason { try Self.parse(bytes) }.contains("invalid UTF-8"), "\(bytes)")
        }
        #expect(Self.reason { try Self.parse([0x22, 0x61, 0xFF, 0x22]) }.contains("at byte 3"))
    }

    @Test func nestingIsBounded() throws {
        let ok = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        #expect(try Self.parse(ok).array != nil)
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(Self.reason { try Self.parse(deep) }.contains("nest deeper than 512"))
    }

    @Test func syntaxErrorsSayWhatAndWhere() {
        for (text, words) in [("", "ends where a value should be"), ("{\"a\" 1}", "expected ':'"), ("[1,]", "where a value should be"),
                              ("[1 2]", "expected ',' or ']'"), ("01", "may not start with 0"), ("1.", "digits after '.'"),
                              ("\"a\u{01}\"", "control character"), ("\"\\q\"", "invalid escape"), ("[] x", "after the JSON value"),
                              ("tru", "expected true"), ("1e999", "out of range"), ("{1: 2}", "must be a string")] {
            #expect(Self.reason { try Self.parse(text) }.contains(words), "\(text.debugDescription): \(Self.reason { try Self.parse(text) })")
        }
    }
}
