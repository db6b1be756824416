import Ethereum
/// A Sign-In with Ethereum message (EIP-4361).
///
/// ``init(parsing:)`` accepts exactly the EIP's ABNF and nothing else; ``text`` writes a message in
/// that form. Signatures cover the text, so a verifier hashes the text it was given, never a
/// re-rendering of the parsed fields.
///
/// ```
/// example.com wants you to sign in with your Ethereum account:
/// 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2
///
/// I accept the ExampleOrg Terms of Service: https://example.com/tos
///
/// URI: https://example.com/login
/// Version: 1
/// Chain ID: 1
/// Nonce: 32891756
/// Issued At: 2021-09-30T16:25:24Z
/// ```
public struct SIWEMessage: Sendable, Hashable {
    /// The only version EIP-4361 defines.
    public static let version = "1"

    /// The scheme written before the domain (`https://example.com wants you…`); nil when the line
    /// starts with the domain, which then means `https`.
    public var scheme: String?
    /// The RFC 3986 authority asking for the signature: host and optional userinfo and port.
    public var domain: String
    /// The account signing in, EIP-55 checksummed in the text.
    public var address: EthereumAddress
    /// The human-readable assertion; nil when the message has none. An empty statement (a blank
    /// line where the statement goes) is `""`, which the ABNF allows and which is not the same text.
    public var statement: String?
    /// The RFC 3986 URI that is the subject of the signing.
    public var uri: String
    /// The EIP-155 chain the session is bound to.
    public var chainID: UInt64
    /// At least 8 ASCII letters and digits, chosen by the relying party to stop replays.
    public var nonce: String
    /// When the message was made.
    public var issuedAt: RFC3339Timestamp
    /// When the signed message stops being valid.
    public var expirationTime: RFC3339Timestamp?
    /// When the signed message starts being valid.
    public var notBefore: RFC3339Timestamp?
    /// The relying party's identifier of the request (RFC 3986 `pchar`s, possibly empty).
    public var requestID: String?
    /// URIs the user wants resolved as part of signing in; nil when there is no `Resources:` line,
    /// `[]` when the line has no items after it.
    public var resources: [String]?

    /// A message from its fields. Nothing is checked here: ``text`` writes what it is given, and
    /// `SIWEMessage(parsing: message.text)` tells whether that is a valid message.
    public init(
        scheme: String? = nil,
        domain: String,
        address: EthereumAddress,
        statement: String? = nil,
        uri: String,
        chainID: UInt64,
        nonce: String,
        issuedAt: RFC3339Timestamp,
        expirationTime: RFC3339Timestamp? = nil,
        notBefore: RFC3339Timestamp? = nil,
        requestID: String? = nil,
        resources: [String]? = nil
    ) {
        self.scheme = scheme
        self.domain = domain
        self.address = address
        self.statement = statement
        self.uri = uri
        self.chainID = chainID
        self.nonce = nonce
        self.issuedAt = issuedAt
        self.expirationTime = expirationTime
        self.notBefore = notBefore
        self.requestID = requestID
        self.resources = resources
    }

    /// The message as EIP-4361 writes it: lines joined by LF, no line break at the end.
    public var text: String {
        var text = (scheme.map { $0 + "://" } ?? "") + domain + SIWEParser.preambleSuffix + "\n"
        text += address.checksummed + "\n\n"
        if let statement { text += statement + "\n" }
        text += "\nURI: \(uri)\nVersion: \(Self.version)\nChain ID: \(chainID)\nNonce: \(nonce)\nIssued At: \(issuedAt.text)"
        if let expirationTime { text += "\nExpiration Time: \(expirationTime.text)" }
        if let notBefore { text += "\nNot Before: \(notBefore.text)" }
        if let requestID { text += "\nRequest ID: \(requestID)" }
        if let resources {
            text += "\nResources:"
            for resource in resources { text += "\n- \(resource)" }
        }
        return text
    }
}

/// A message that does not follow EIP-4361's ABNF: where and why.
public struct SIWEParseError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The 1-based line of the message the error is on.
    public let line: Int
    /// The field or part of the message: `domain`, `address`, `statement`, `URI`, `Chain ID`…
    public let field: String
    /// What is wrong with it.
    public let reason: String

    public init(line: Int, field: String, reason: String) {
        self.line = line
        self.field = field
        self.reason = reason
    }

    public var description: String { "line \(line) (\(field)): \(reason)" }
}
