import Foundation
import Vault
import Ethereum

/// A grant to play gated streams, given to an account after it signed in and passed the asset's
/// ownership policy, and presented with every key request.
///
/// On the wire it is `base64url(payload).base64url(HMAC-SHA256(key, base64url(payload)))`, the
/// payload a JSON object with sorted keys: `{"addr":"0x…","asset":"…","exp":1700000000,"jti":"…","v":1}`.
/// The origin checks it with nothing but its secret and, for revocations, one Redis `EXISTS`.
public struct PlaybackToken: Sendable, Hashable {
    /// The account the token was issued to.
    public let address: EthereumAddress
    /// When the token stops being accepted (whole seconds).
    public let expiresAt: Date
    /// The token's id (32 lowercase hex digits), by which it is revoked.
    public let id: String
    /// The one asset the token plays, or nil for every asset the account may play.
    public let asset: String?

    public init(address: EthereumAddress, expiresAt: Date, id: String, asset: String?) {
        self.address = address
        self.expiresAt = Date(timeIntervalSince1970: expiresAt.timeIntervalSince1970.rounded(.down))
        self.id = id
        self.asset = asset
    }

    /// Whether the token covers `asset`.
    public func permits(asset requested: String) -> Bool { asset == nil || asset == requested }

    /// The longest token text accepted. A payload with a 64-byte asset id encodes to about 330
    /// characters; the cap bounds what a request can make the origin parse, cache or repeat.
    public static let maximumTextLength = 512

    /// Whether `text` has a token's shape: two non-empty base64url parts (`A-Z a-z 0-9 - _`)
    /// around one `.`, at most ``maximumTextLength`` bytes. It says nothing of authenticity, but
    /// text of any other shape is certainly not a token: it is refused before it is written into a
    /// playlist (where a newline or a quote would add lines or attributes) or parsed.
    public static func isWellFormed(_ text: some StringProtocol) -> Bool {
        let bytes = text.utf8
        guard bytes.count <= maximumTextLength, let dot = bytes.firstIndex(of: UInt8(ascii: ".")) else { return false }
        let payload = bytes[..<dot], signature = bytes[bytes.index(after: dot)...]
        return !payload.isEmpty && !signature.isEmpty && payload.allSatisfy(isBase64URL) && signature.allSatisfy(isBase64URL)
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        URIGrammar.isAlpha(byte) || URIGrammar.isDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}

/// Why a playback token was refused: a stable, machine-readable ``reason`` and a message.
public enum PlaybackTokenError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Not `payload.signature` in base64url, or a payload that is not a token's.
    case malformed(String)
    /// The signature is not this deployment's over this payload: forged, tampered with, or made
    /// with another secret.
    case badSignature
    /// The token's time has passed.
    case expired(Date)
    /// The token was revoked.
    case revoked(id: String)
    /// The token is scoped to another asset.
    case wrongAsset(expected: String, requested: String)
    /// The revocation list could not be read; the token is refused rather than trusted blindly.
    case unavailable(String)

    /// `malformed`, `bad_signature`, `expired`, `revoked`, `wrong_asset` or `unavailable`.
    public var reason: String {
        switch self {
        case .malformed: "malformed"
        case .badSignature: "bad_signature"
        case .expired: "expired"
        case .revoked: "revoked"
        case .wrongAsset: "wrong_asset"
        case .unavailable: "unavailable"
        }
    }

    /// What went wrong, for a person.
    public var message: String {
        switch self {
        case .malformed(let detail): "not a playback token: \(detail)"
        case .badSignature: "the playback token's signature is not valid"
        case .expired(let date): "the playback token expired at \(RFC3339Timestamp(date).text)"
        case .revoked(let id): "playback token \(id) was revoked"
        case .wrongAsset(let expected, let requested): "the playback token is for asset \(expected), not \(requested)"
        case .unavailable(let detail): "playback tokens cannot be checked now: \(detail)"
        }
    }

    public var description: String { "\(reason): \(message)" }
}

/// A playback-token setting that cannot work.
public struct PlaybackTokenConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Issues, checks and revokes ``PlaybackToken``s with one secret.
///
/// The MAC key is derived from the configured secret (HMAC-SHA256 of a fixed label), so the same
/// secret used elsewhere never yields the same MACs. Verification compares MACs in constant time
/// and checks them before the payload is even parsed.
public struct PlaybackTokenAuthority: Sendable {
    /// The shortest secret accepted: 32 bytes, HMAC-SHA256's full strength.
    public static let minimumSecretCount = 32

    private let key: [UInt8]
    private let revocations: (any TokenRevocations)?
    private let clock: @Sendable () -> Date

    /// - Parameters:
    ///   - secret: at least 32 random bytes, the same on every origin replica.
    ///   - revocations: where revoked token ids are kept; nil when tokens cannot be revoked.
    ///   - clock: the current time; tests pass a fixed one.
    public init(
        secret: [UInt8],
        revocations: (any TokenRevocations)? = nil,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) throws(PlaybackTokenConfigurationError) {
        guard secret.count >= Self.minimumSecretCount else {
            throw PlaybackTokenConfigurationError(description: "the playback token secret is \(secret.count) bytes; at least \(Self.minimumSecretCount) are required")
        }
        key = Digest.hmacSHA256(key: secret, message: Array("streamgate playback token v1".utf8))
        self.revocations = revocations
        self.clock = clock
    }

    /// A new token for `address`, valid for `lifetime` from now, for `asset` only or, when nil, for
    /// every asset. Its id is 128 random bits.
    public func issue(for address: EthereumAddress, lifetime: TimeInterval, asset: String? = nil) throws -> PlaybackToken {
        PlaybackToken(
            address: address,
            expiresAt: clock().addingTimeInterval(lifetime),
            id: Digest.hex(try SecureRandom.bytes(16)),
            asset: asset
        )
    }

    /// The token's text form, to hand to the player.
    public func encode(_ token: PlaybackToken) -> String {
        let payload = Payload(
            v: Payload.version, addr: token.address.checksummed, exp: Int64(token.expiresAt.timeIntervalSince1970),
            jti: token.id, asset: token.asset
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A struct of strings and integers always encodes.
        let json = try! encoder.encode(payload)
        return signed(payload: [UInt8](json))
    }

    /// `payload` as a token's text, signed with this authority's key whatever the bytes are: what
    /// ``encode(_:)`` sends, and how the fuzz harness reaches the payload reader behind the MAC.
    package func signed(payload: [UInt8]) -> String {
        let body = Base64URL.encode(payload)
        return body + "." + Base64URL.encode(mac(body))
    }

    /// The token `text` stands for, if it is authentic, unexpired, unrevoked and — when `asset` is
    /// given — covers that asset.
    public func verify(_ text: String, asset requested: String? = nil) async throws(PlaybackTokenError) -> PlaybackToken {
        let token = try authenticate(text, asset: requested)
        if let revocations {
            let revoked: Bool
            do {
                revoked = try await revocations.isRevoked(id: token.id)
            } catch {
                throw .unavailable("revocation list: \(error)")
            }
            if revoked { throw .revoked(id: token.id) }
        }
        return token
    }

    /// Every check of ``verify(_:asset:)`` but the revocation list, which is the only one that
    /// waits: synchronous, so a fuzz harness can drive it.
    package func authenticate(_ text: String, asset requested: String? = nil) throws(PlaybackTokenError) -> PlaybackToken {
        guard text.utf8.count <= PlaybackToken.maximumTextLength else {
            throw .malformed("longer than \(PlaybackToken.maximumTextLength) bytes")
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .malformed("expected two base64url parts separated by '.'") }
        guard let json = Base64URL.decode(parts[0]) else { throw .malformed("the payload is not base64url") }
        guard let signature = Base64URL.decode(parts[1]) else { throw .malformed("the signature is not base64url") }
        // The MAC is checked before the payload is parsed: nothing unauthenticated reaches the decoder.
        guard Digest.constantTimeEqual(signature, mac(String(parts[0]))) else { throw .badSignature }

        let token = try Self.token(from: json)
        guard clock() < token.expiresAt else { throw .expired(token.expiresAt) }
        if let requested, !token.permits(asset: requested) {
            throw .wrongAsset(expected: token.asset ?? "", requested: requested)
        }
        return token
    }

    /// Revokes `token` everywhere until it expires. Throws when no revocation store is configured.
    public func revoke(_ token: PlaybackToken) async throws {
        guard let revocations else {
            throw PlaybackTokenConfigurationError(description: "playback tokens cannot be revoked: no revocation store is configured")
        }
        try await revocations.revoke(id: token.id, expiresAt: token.expiresAt)
    }

    private func mac(_ body: String) -> [UInt8] {
        Digest.hmacSHA256(key: key, message: Array(body.utf8))
    }

    private static func token(from json: [UInt8]) throws(PlaybackTokenError) -> PlaybackToken {
        let payload: Payload
        do {
            payload = try JSONDecoder().decode(Payload.self, from: Data(json))
        } catch {
            throw .malformed("the payload is not a token's JSON")
        }
        guard payload.v == Payload.version else { throw .malformed("unknown token version \(payload.v)") }
        // Years 1970–9999: what expires_at and the messages can write. A far expiry trapped when
        // the token was encoded again, a far past one when its "expired" message was written.
        guard (0...253_402_300_799).contains(payload.exp) else {
            throw .malformed("the expiry \(payload.exp) is not a time in years 1970 to 9999")
        }
        guard payload.jti.utf8.count == 32, payload.jti.utf8.allSatisfy({ URIGrammar.isDigit($0) || (0x61...0x66).contains($0) }) else {
            throw .malformed("the token id is not 32 lowercase hex digits")
        }
        let address: EthereumAddress
        do {
            address = try EthereumAddress(hex: payload.addr, checksum: .required)
        } catch {
            throw .malformed(error.description)
        }
        return PlaybackToken(address: address, expiresAt: Date(timeIntervalSince1970: Double(payload.exp)), id: payload.jti, asset: payload.asset)
    }

    /// The signed JSON; short keys after JWT's where one exists.
    private struct Payload: Codable {
        static let version = 1
        var v: Int
        var addr: String
        var exp: Int64
        var jti: String
        var asset: String?
    }
}
