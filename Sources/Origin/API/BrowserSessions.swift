import Foundation
import Gate
import HTTPTypes
import Hummingbird
import Redis
import Vault

/// Browser sign-in to the job API: an API key traded once for a session cookie (`HttpOnly`,
/// `SameSite=Strict`), so a page never keeps the key where its scripts could read it.
///
/// A session is stateless, so every origin of a deployment accepts it: its expiry and a keyed tag
/// of the API key it came from, under an HMAC keyed from the master key. Removing an API key from
/// the server's list ends its sessions. A request that changes something must also carry
/// `X-CSRF-Token`, a second HMAC of the session: another site's page can neither read it nor,
/// under `SameSite=Strict`, send the cookie. Signing out revokes the session on every origin until
/// it would have expired (``Keyspace/revokedSession(_:)``).
public struct BrowserSessions: Sendable {
    public static let cookieName = "streamgate_session"
    public static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    /// Sessions live this long after sign-in (then the console asks for the key again).
    public let lifetime: Duration
    private let key: [UInt8]

    /// A session as the server reads it back.
    public struct Session: Sendable, Equatable {
        public var expiresAt: Int64
        /// 8 bytes naming the API key it was opened with (an HMAC of its digest).
        public var keyTag: [UInt8]
        /// The session's own random part: what a sign-out revokes.
        public var nonce: [UInt8]
    }

    public init(masterKey: MasterKey, lifetime: Duration = .seconds(8 * 3600)) {
        key = masterKey.derivedKey(for: "browser session")
        self.lifetime = lifetime
    }

    /// A new session's cookie value for the API key whose SHA-256 is `keyDigest`.
    public func open(keyDigest: [UInt8], now: Date = Date()) throws -> (value: String, expiresAt: Int64) {
        let expires = Int64(now.timeIntervalSince1970) + lifetime.components.seconds
        var payload: [UInt8] = [1]
        withUnsafeBytes(of: expires.bigEndian) { payload += $0 }
        payload += keyTag(keyDigest)
        payload += try SecureRandom.bytes(16)
        let text = Base64URL.encode(payload)
        return (text + "." + Base64URL.encode(Digest.hmacSHA256(key: key, message: Array(text.utf8))), expires)
    }

    /// The session `value` names, when it is this server's, unexpired and its key still known.
    public func session(_ value: String, knownKeyDigests: [[UInt8]], now: Date = Date()) -> Session? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard value.utf8.count <= 200, parts.count == 2, let payload = Base64URL.decode(parts[0]), payload.count == 33, payload[0] == 1,
              let mac = Base64URL.decode(parts[1]),
              Digest.constantTimeEqual(mac, Digest.hmacSHA256(key: key, message: Array(parts[0].utf8)))
        else { return nil }
        let expires = payload[1..<9].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let tag = Array(payload[9..<17])
        guard expires > Int64(now.timeIntervalSince1970), knownKeyDigests.contains(where: { keyTag($0) == tag }) else { return nil }
        return Session(expiresAt: expires, keyTag: tag, nonce: Array(payload[17..<33]))
    }

    /// Which API key a session came from, keyed so a cookie seen by others is no test of guesses
    /// at the key.
    private func keyTag(_ keyDigest: [UInt8]) -> [UInt8] {
        Array(Digest.hmacSHA256(key: key, message: Array("key:".utf8) + keyDigest).prefix(8))
    }

    /// The CSRF token that goes with the session `value`: given to the page at sign-in and on
    /// `GET /v1/session`, sent back by its scripts on every change.
    public func csrfToken(for value: String) -> String {
        Base64URL.encode(Digest.hmacSHA256(key: key, message: Array("csrf:\(value)".utf8)))
    }

    public func isCSRFToken(_ candidate: String?, for value: String) -> Bool {
        guard let candidate else { return false }
        return Digest.constantTimeEqual(Array(candidate.utf8), Array(csrfToken(for: value).utf8))
    }

    /// The `Set-Cookie` of a session (nil value: the cookie removed). `Secure` when the request
    /// came over TLS to a proxy in front (`X-Forwarded-Proto: https`).
    static func cookie(_ value: String?, maxAge: Int, secure: Bool) -> Cookie {
        Cookie(name: cookieName, value: value ?? "", maxAge: value == nil ? 0 : maxAge, path: "/", secure: secure, httpOnly: true, sameSite: .strict)
    }
}

extension Keyspace {
    /// A signed-out browser session (its nonce in hex), kept until the session would have expired.
    public func revokedSession(_ nonce: [UInt8]) -> String { "\(tag):session:revoked:\(Digest.hex(nonce))" }
}
