import Foundation
import Testing
@testable import Gate

@Suite("EIP-4361 message parsing")
struct SIWEMessageTests {
    /// EIP-4361's first example.
    static let example = """
        example.com wants you to sign in with your Ethereum account:
        0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

        I accept the ExampleOrg Terms of Service: https://example.com/tos

        URI: https://example.com/login
        Version: 1
        Chain ID: 1
        Nonce: 32891756
        Issued At: 2021-09-30T16:25:24Z
        Resources:
        - ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
        - https://example.com/my-web2-claim.json
        """

    /// A message using every optional field.
    static let full = """
        https://stream.example.com:8443 wants you to sign in with your Ethereum account:
        0x2c7536E3605D9C16a7a3D7b1898e529396a65c23

        Watch the members' stream (season 2, episode 1)!

        URI: https://stream.example.com:8443/login?next=%2Fv%2Fa1#top
        Version: 1
        Chain ID: 137
        Nonce: abcDEF12345
        Issued At: 2025-01-15T12:00:00.123+01:00
        Expiration Time: 2025-01-15t12:10:00z
        Not Before: 2025-01-15T10:59:00Z
        Request ID: req-42:x@y
        Resources:
        - https://stream.example.com/v/a1
        - urn:asset:a1
        """

    @Test("the EIP's example")
    func example() throws {
        let message = try SIWEMessage(parsing: Self.example)
        #expect(message.scheme == nil)
        #expect(message.domain == "example.com")
        #expect(message.address.checksummed == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2")
        #expect(message.statement == "I accept the ExampleOrg Terms of Service: https://example.com/tos")
        #expect(message.uri == "https://example.com/login")
        #expect(message.chainID == 1)
        #expect(message.nonce == "32891756")
        #expect(message.issuedAt.date == Date(timeIntervalSince1970: 1_633_019_124))
        #expect(message.expirationTime == nil && message.notBefore == nil && message.requestID == nil)
        #expect(message.resources == ["ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/", "https://example.com/my-web2-claim.json"])
        #expect(message.text == Self.example)
    }

    @Test("every optional field, a scheme, a port and a time offset")
    func full() throws {
        let message = try SIWEMessage(parsing: Self.full)
        #expect(message.scheme == "https")
        #expect(message.domain == "stream.example.com:8443")
        #expect(message.statement == "Watch the members' stream (season 2, episode 1)!")
        #expect(message.chainID == 137)
        #expect(message.issuedAt.date == date("2025-01-15T11:00:00.123Z"))
        #expect(message.expirationTime?.date == date("2025-01-15T12:10:00Z"))
        #expect(message.notBefore?.date == date("2025-01-15T10:59:00Z"))
        #expect(message.requestID == "req-42:x@y")
        #expect(message.resources == ["https://stream.example.com/v/a1", "urn:asset:a1"])
        #expect(message.text == Self.full)
    }

    @Test("accepted variants round-trip to the same text", arguments: [
        // No statement: three line breaks after the address.
        "example.com wants you to sign in with your Ethereum account:\n0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\nURI: https://example.com/login\nVersion: 1\nChain ID: 1\nNonce: 32891756\nIssued At: 2021-09-30T16:25:24Z",
        // An empty statement line, which the ABNF allows.
        "example.com wants you to sign in with your Ethereum account:\n0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\n\nURI: https://example.com/login\nVersion: 1\nChain ID: 1\nNonce: 32891756\nIssued At: 2021-09-30T16:25:24Z",
        // Userinfo, IPv6 literal host, localhost ports.
        "user@[::1]:3000 wants you to sign in with your Ethereum account:\n0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\nURI: http://[::1]:3000/\nVersion: 1\nChain ID: 31337\nNonce: 32891756\nIssued At: 2021-09-30T16:25:24Z",
        // Empty request id and an empty resource list.
        "example.com wants you to sign in with your Ethereum account:\n0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\nURI: did:key:z6Mk\nVersion: 1\nChain ID: 1\nNonce: 32891756\nIssued At: 2021-09-30T16:25:24Z\nRequest ID: \nResources:",
        // Only a not-before, and a leap second.
        "example.com wants you to sign in with your Ethereum account:\n0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\nURI: https://example.com\nVersion: 1\nChain ID: 1\nNonce: 32891756\nIssued At: 2016-12-31T23:59:60Z\nNot Before: 2016-12-31T23:59:59.999-00:30",
    ])
    func variants(_ text: String) throws {
        #expect(try SIWEMessage(parsing: text).text == text)
    }

    @Test("no statement and an empty statement are told apart")
    func statements() throws {
        let none = "example.com wants you to sign in with your Ethereum account:\n0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\nURI: https://example.com\nVersion: 1\nChain ID: 1\nNonce: 32891756\nIssued At: 2021-09-30T16:25:24Z"
        #expect(try SIWEMessage(parsing: none).statement == nil)
        let empty = none.replacingOccurrences(of: "\n\n\n", with: "\n\n\n\n")
        #expect(try SIWEMessage(parsing: empty).statement == "")
    }

    /// Each case edits the EIP example; the error must name this line and field and contain this text.
    static let refusals: [(name: String, edit: @Sendable (String) -> String, line: Int, field: String, reason: String)] = [
        ("not a SIWE preamble", { $0.replacingOccurrences(of: "Ethereum account:", with: "account:") }, 1, "domain", "first line must be"),
        ("bad scheme", { "1https://" + $0 }, 1, "scheme", "must start with a letter"),
        ("empty domain", { $0.replacingOccurrences(of: "example.com wants", with: " wants") }, 1, "domain", "first line must be"),
        ("space in domain", { $0.replacingOccurrences(of: "example.com wants", with: "exa mple.com wants") }, 1, "domain", "' '"),
        ("path in domain", { $0.replacingOccurrences(of: "example.com wants", with: "example.com/x wants") }, 1, "domain", "'/'"),
        ("lowercase address", { $0.replacingOccurrences(of: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", with: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2") }, 2, "address", "bad checksum"),
        ("wrong checksum", { $0.replacingOccurrences(of: "0xC02aaA39", with: "0xC02AaA39") }, 2, "address", "bad checksum"),
        ("short address", { $0.replacingOccurrences(of: "83C756Cc2\n", with: "83C756C\n") }, 2, "address", "38 hex digits"),
        ("no blank line after the address", { $0.replacingOccurrences(of: "Cc2\n\n", with: "Cc2\n") }, 3, "blank line", "expected an empty line after the address"),
        ("no blank line after the statement", { $0.replacingOccurrences(of: "/tos\n\n", with: "/tos\n") }, 5, "blank line", "after the statement"),
        ("one blank line and no statement", { $0.replacingOccurrences(of: "I accept the ExampleOrg Terms of Service: https://example.com/tos\n\n", with: "") }, 4, "statement", "two empty lines"),
        ("statement with a quote", { $0.replacingOccurrences(of: "I accept", with: "I \"accept\"") }, 4, "statement", "'\"'"),
        ("statement with a percent sign", { $0.replacingOccurrences(of: "I accept", with: "100% I accept") }, 4, "statement", "'%'"),
        ("URI without scheme", { $0.replacingOccurrences(of: "URI: https://example.com/login", with: "URI: example.com/login") }, 6, "URI", "no ':'"),
        ("URI with a space", { $0.replacingOccurrences(of: "URI: https://example.com/login", with: "URI: https://example.com/log in") }, 6, "URI", "' '"),
        ("URI with a bad escape", { $0.replacingOccurrences(of: "URI: https://example.com/login", with: "URI: https://example.com/%zz") }, 6, "URI", "'%'"),
        ("URI with a bad port", { $0.replacingOccurrences(of: "URI: https://example.com/login", with: "URI: https://example.com:44x/login") }, 6, "URI", "port"),
        ("missing URI field", { $0.replacingOccurrences(of: "URI: https://example.com/login\n", with: "") }, 6, "URI", "expected 'URI: …', found 'Version: 1'"),
        ("version 2", { $0.replacingOccurrences(of: "Version: 1", with: "Version: 2") }, 7, "Version", "must be 1"),
        ("chain id not a number", { $0.replacingOccurrences(of: "Chain ID: 1", with: "Chain ID: 0x1") }, 8, "Chain ID", "decimal number"),
        ("chain id too large", { $0.replacingOccurrences(of: "Chain ID: 1", with: "Chain ID: 99999999999999999999999") }, 8, "Chain ID", "too large"),
        ("short nonce", { $0.replacingOccurrences(of: "Nonce: 32891756", with: "Nonce: 3289175") }, 9, "Nonce", "at least 8"),
        ("nonce with a dash", { $0.replacingOccurrences(of: "Nonce: 32891756", with: "Nonce: 3289-1756") }, 9, "Nonce", "'-'"),
        ("month 13", { $0.replacingOccurrences(of: "2021-09-30T", with: "2021-13-30T") }, 10, "Issued At", "month 13"),
        ("February 30", { $0.replacingOccurrences(of: "2021-09-30T", with: "2021-02-30T") }, 10, "Issued At", "day 30"),
        ("space for T", { $0.replacingOccurrences(of: "2021-09-30T", with: "2021-09-30 ") }, 10, "Issued At", "'T'"),
        ("no time offset", { $0.replacingOccurrences(of: "16:25:24Z", with: "16:25:24") }, 10, "Issued At", "offset"),
        ("missing issued at", { $0.replacingOccurrences(of: "\nIssued At: 2021-09-30T16:25:24Z", with: "") }, 10, "Issued At", "expected 'Issued At: …'"),
        ("bad expiration time", { $0.replacingOccurrences(of: "16:25:24Z\n", with: "16:25:24Z\nExpiration Time: tomorrow\n") }, 11, "Expiration Time", "year"),
        ("fields out of order", { $0.replacingOccurrences(of: "16:25:24Z\n", with: "16:25:24Z\nNot Before: 2021-09-30T16:25:24Z\nExpiration Time: 2021-10-30T16:25:24Z\n") }, 12, "Expiration Time", "out of order"),
        ("repeated nonce", { $0.replacingOccurrences(of: "16:25:24Z\n", with: "16:25:24Z\nNonce: 32891756\n") }, 11, "Nonce", "repeated"),
        ("unknown field", { $0.replacingOccurrences(of: "16:25:24Z\n", with: "16:25:24Z\nSession: 1\n") }, 11, "end", "unexpected line 'Session: 1'"),
        ("request id with '#'", { $0.replacingOccurrences(of: "16:25:24Z\n", with: "16:25:24Z\nRequest ID: a#b\n") }, 11, "Request ID", "'#'"),
        ("resource without a dash", { $0.replacingOccurrences(of: "- https://example.com/my-web2-claim.json", with: "https://example.com/my-web2-claim.json") }, 13, "Resources", "expected '- ' and a URI"),
        ("resource that is not a URI", { $0.replacingOccurrences(of: "- https://example.com/my-web2-claim.json", with: "- my web2 claim") }, 13, "Resources", "resource 2"),
        ("trailing line break", { $0 + "\n" }, 14, "end", "without a line break"),
        ("CRLF line ends", { $0.replacingOccurrences(of: "\n", with: "\r\n") }, 1, "characters", "carriage return"),
        ("non-ASCII look-alike in the domain", { $0.replacingOccurrences(of: "example.com wants", with: "ex\u{0430}mple.com wants") }, 1, "characters", "printable ASCII"),
        ("empty text", { _ in "" }, 1, "domain", "first line must be"),
        ("ends after the address", { $0.components(separatedBy: "\n").prefix(2).joined(separator: "\n") }, 3, "blank line", "ends after the address"),
    ]

    @Test("refused messages name the line, the field and the reason", arguments: 0..<refusals.count)
    func refusal(_ index: Int) {
        let refusal = Self.refusals[index]
        let text = refusal.edit(Self.example)
        #expect(text != Self.example, "\(refusal.name): the edit changed nothing")
        let error = #expect(throws: SIWEParseError.self, "\(refusal.name)") { try SIWEMessage(parsing: text) }
        guard let error else { return }
        #expect(error.line == refusal.line, "\(refusal.name): \(error)")
        #expect(error.field == refusal.field, "\(refusal.name): \(error)")
        #expect(error.description.contains(refusal.reason), "\(refusal.name): \(error)")
    }

    @Test("RFC 3339 timestamps: offsets, fractions, and UTC rendering")
    func timestamps() throws {
        #expect(try RFC3339Timestamp("1970-01-01T00:00:00Z").date == Date(timeIntervalSince1970: 0))
        #expect(try RFC3339Timestamp("2000-02-29T23:59:59.5-01:00").date == Date(timeIntervalSince1970: 951_872_399.5))
        #expect(throws: RFC3339Error.self) { try RFC3339Timestamp("2001-02-29T00:00:00Z") }
        #expect(throws: RFC3339Error.self) { try RFC3339Timestamp("2000-01-01T24:00:00Z") }
        #expect(throws: RFC3339Error.self) { try RFC3339Timestamp("2000-01-01T00:00:00+0100") }
        #expect(throws: RFC3339Error.self) { try RFC3339Timestamp("2000-01-01T00:00:00.Z") }
        #expect(RFC3339Timestamp(Date(timeIntervalSince1970: 951_872_399.5)).text == "2000-03-01T00:59:59.500Z")
        #expect(RFC3339Timestamp(Date(timeIntervalSince1970: -1)).text == "1969-12-31T23:59:59Z")
    }

    /// Found with the playback-token fuzz harness: writing an instant beyond Int64 milliseconds
    /// trapped. RFC 3339 has four-digit years, so such an instant is written as the nearest it can.
    @Test("RFC 3339 text of an instant outside years 0000 to 9999 is the nearest one, not a trap")
    func farInstantsAreClampedNotTrapped() throws {
        #expect(RFC3339Timestamp(Date(timeIntervalSince1970: 9.3e18)).text == "9999-12-31T23:59:59.999Z")
        #expect(RFC3339Timestamp(Date(timeIntervalSince1970: -9.3e18)).text == "0000-01-01T00:00:00Z")
        #expect(RFC3339Timestamp(Date(timeIntervalSince1970: .infinity)).text == "9999-12-31T23:59:59.999Z")
        #expect(RFC3339Timestamp(Date(timeIntervalSince1970: 253_402_300_799)).text == "9999-12-31T23:59:59Z")
        #expect(try RFC3339Timestamp(RFC3339Timestamp(Date(timeIntervalSince1970: 1e300)).text).date.timeIntervalSince1970 < 253_402_300_800)
    }
}

func date(_ text: String) -> Date { try! RFC3339Timestamp(text).date }
