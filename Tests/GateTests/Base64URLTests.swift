import Foundation
import Testing
@testable import Gate

@Suite("base64url")
struct Base64URLTests {
    @Test("agrees with Foundation's base64 (URL alphabet, no padding) for every length up to 64")
    func agreesWithFoundation() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...64 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(bytes) == expected, "length \(length)")
            #expect(Base64URL.decode(Substring(expected)) == bytes, "length \(length)")
        }
    }

    @Test("refuses padding, the standard alphabet, impossible lengths and non-canonical trailing bits", arguments: [
        "QQ==", "a+b/", "A", "AAAAA", "QR", "QUF", "QUE=", "Q Q",
    ])
    func refuses(_ text: String) {
        #expect(Base64URL.decode(Substring(text)) == nil, "\(text)")
    }
}
