import Foundation
import TestSupport
import Testing
@testable import Gate

@Suite("playback tokens")
struct PlaybackTokenTests {
    static let secret = [UInt8](repeating: 7, count: 32)
    static let start = date("2025-01-15T12:00:00Z")

    /// Replaces one base64url part of a token.
    static func replacing(part index: Int, of token: String, with bytes: [UInt8]) -> String {
        var parts = token.split(separator: ".").map(String.init)
        parts[index] = Base64URL.encode(bytes)
        return parts.joined(separator: ".")
    }

    @Test("issue and verify round trip, scoped and unscoped")
    func roundTrip() async throws {
        let clock = TestClock(Self.start)
        let authority = try PlaybackTokenAuthority(secret: Self.secret, clock: clock.function)
        let token = try authority.issue(for: Keys.aliceAddress, lifetime: 3600, asset: "a1")
        #expect(token.id.count == 32)
        #expect(token.expiresAt == Self.start.addingTimeInterval(3600))
        let text = authority.encode(token)
        #expect(text.split(separator: ".").count == 2)
        #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
        #expect(try await authority.verify(text) == token)
        #expect(try await authority.verify(text, asset: "a1") == token)
        let wrongAsset = await #expect(throws: PlaybackTokenError.self) { try await authority.verify(text, asset: "a2") }
        #expect(wrongAsset == .wrongAsset(expected: "a1", requested: "a2"))

        let unscoped = try authority.issue(for: Keys.bobAddress, lifetime: 60)
        #expect(try await authority.verify(authority.encode(unscoped), asset: "anything") == unscoped)
        #expect(try authority.issue(for: Keys.bobAddress, lifetime: 60).id != unscoped.id)
    }

    @Test("forged signature, tampered payload and another secret are bad signatures")
    func forgeries() async throws {
        let authority = try PlaybackTokenAuthority(secret: Self.secret, clock: { PlaybackTokenTests.start })
        let token = try authority.issue(for: Keys.aliceAddress, lifetime: 3600, asset: "a1")
        let text = authority.encode(token)

        let forged = Self.replacing(part: 1, of: text, with: [UInt8](repeating: 0x42, count: 32))
        #expect(await reason(authority, forged) == "bad_signature")

        // Bob's address and a later expiry in otherwise the same payload, with Alice's signature.
        let payload = String(decoding: Base64URL.decode(text.split(separator: ".")[0])!, as: UTF8.self)
        #expect(payload.contains(Keys.aliceAddress.checksummed))
        let edited = payload
            .replacingOccurrences(of: Keys.aliceAddress.checksummed, with: Keys.bobAddress.checksummed)
            .replacingOccurrences(of: "\"exp\":", with: "\"exp\":9")
        #expect(edited != payload)
        let tampered = Self.replacing(part: 0, of: text, with: Array(edited.utf8))
        #expect(await reason(authority, tampered) == "bad_signature")

        let other = try PlaybackTokenAuthority(secret: [UInt8](repeating: 8, count: 32), clock: { PlaybackTokenTests.start })
        #expect(await reason(other, text) == "bad_signature")
        #expect(await reason(authority, other.encode(token)) == "bad_signature")
    }

    @Test("tokens stop at their expiry")
    func expiry() async throws {
        let clock = TestClock(Self.start)
        let authority = try PlaybackTokenAuthority(secret: Self.secret, clock: clock.function)
        let text = authority.encode(try authority.issue(for: Keys.aliceAddress, lifetime: 120))
        clock.advance(by: 119)
        _ = try await authority.verify(text)
        clock.advance(by: 1)
        let error = await #expect(throws: PlaybackTokenError.self) { try await authority.verify(text) }
        #expect(error == .expired(Self.start.addingTimeInterval(120)))
        #expect(error?.reason == "expired")
    }

    @Test("malformed tokens say so", arguments: [
        "", "abc", "a.b.c", "eyJ2IjoxfQ==.AAAA", "eyJ2IjoxfQ.AA+A", "eyJ2IjoxfQ.AAB",
    ])
    func malformed(_ text: String) async throws {
        let authority = try PlaybackTokenAuthority(secret: Self.secret)
        #expect(await reason(authority, text) == "malformed")
    }

    @Test("secrets shorter than 32 bytes are refused")
    func shortSecret() {
        #expect(throws: PlaybackTokenConfigurationError.self) { try PlaybackTokenAuthority(secret: [UInt8](repeating: 1, count: 31)) }
    }

    /// What may be written into a playlist as a token: the grammar alone, before any MAC.
    @Test("a token's grammar: two base64url parts around one dot, 512 bytes at most", arguments: [
        ("eyJhIjoxfQ.c2ln", true), ("a.b", true), ("A-z_0.9-_", true),
        ("", false), (".", false), ("a.", false), (".b", false), ("a.b.c", false), ("ab", false),
        ("a.b\n#EXT-X-KEY:METHOD=NONE", false), ("a.b\"", false), ("a.b%0A", false), ("a+b.c", false), ("a/b.c", false),
        ("a.b=", false), ("a b.c", false), ("é.b", false),
        (String(repeating: "a", count: 510) + ".b", true), (String(repeating: "a", count: 511) + ".b", false),
    ])
    func tokenGrammar(_ text: String, _ wellFormed: Bool) {
        #expect(PlaybackToken.isWellFormed(text) == wellFormed, "\(text.prefix(40))")
    }

    @Test("an issued token is well formed; a token over the length cap is malformed before its MAC is computed")
    func issuedTokensAreWellFormed() async throws {
        let authority = try PlaybackTokenAuthority(secret: Self.secret)
        let text = authority.encode(try authority.issue(for: Keys.aliceAddress, lifetime: 60, asset: String(repeating: "a", count: 64)))
        #expect(PlaybackToken.isWellFormed(text))
        #expect(await reason(authority, text + String(repeating: "A", count: PlaybackToken.maximumTextLength)) == "malformed")
    }

    @Test("revocation through Redis: refused everywhere until expiry, others unaffected")
    func revocation() async throws {
        try await withRedis { redis in
            let client = redis.client()
            let clock = TestClock(Self.start)
            let revocations = RedisTokenRevocations(client: client, margin: 60, clock: clock.function)
            let authority = try PlaybackTokenAuthority(secret: Self.secret, revocations: revocations, clock: clock.function)
            // A second replica: its own client and authority, the same secret and Redis.
            let otherClient = redis.client()
            let replica = try PlaybackTokenAuthority(
                secret: Self.secret, revocations: RedisTokenRevocations(client: otherClient, clock: clock.function), clock: clock.function
            )

            let token = try authority.issue(for: Keys.aliceAddress, lifetime: 600)
            let kept = try authority.issue(for: Keys.aliceAddress, lifetime: 600)
            _ = try await replica.verify(authority.encode(token))
            try await authority.revoke(token)

            let error = await #expect(throws: PlaybackTokenError.self) { try await replica.verify(authority.encode(token)) }
            #expect(error == .revoked(id: token.id))
            #expect(error?.reason == "revoked")
            #expect(try await replica.verify(authority.encode(kept)) == kept)

            // Kept for the token's remaining lifetime plus the margin, and no longer; in one sorted set
            // without a TTL, which Redis's volatile-lru never evicts.
            let until = try #require(try await revocations.revokedUntil(id: token.id))
            #expect(until.timeIntervalSince(clock.now) > 600 && until.timeIntervalSince(clock.now) <= 660, "\(until)")
            #expect(try await client.send(["PTTL", revocations.key]) == .integer(-1))

            // Revoking a long-expired token stores nothing, and drops the revocations past their time.
            clock.advance(by: 3600)
            try await authority.revoke(kept)
            #expect(try await client.send(["ZCARD", revocations.key]) == .integer(0))

            // No revocation store to read: refused, not trusted.
            clock.advance(by: -3600)
            let down = try PlaybackTokenAuthority(
                secret: Self.secret, revocations: RedisTokenRevocations(client: redis.client(reconnectWindow: 0.2)), clock: clock.function
            )
            redis.stop()
            #expect(await reason(down, authority.encode(kept)) == "unavailable")
        }
    }

    @Test("revoking without a revocation store is an error")
    func revokeWithoutStore() async throws {
        let authority = try PlaybackTokenAuthority(secret: Self.secret)
        let token = try authority.issue(for: Keys.aliceAddress, lifetime: 60)
        await #expect(throws: PlaybackTokenConfigurationError.self) { try await authority.revoke(token) }
    }

    /// Found while writing the fuzz harness, confirmed by it (fuzz/crashes/playback-token): a signed
    /// payload with an expiry beyond Int64 seconds trapped when the token was encoded again, and
    /// one far in the past when its "expired" message was written.
    @Test("an expiry outside years 1970 to 9999 is malformed, not a trap")
    func expiryOutOfRangeIsMalformedNotTrapped() throws {
        let authority = try PlaybackTokenAuthority(secret: Self.secret, clock: { PlaybackTokenTests.start })
        for exp in ["9223372036854775807", "-9223372036854775807", "253402300800", "-1"] {
            let payload = #"{"addr":"\#(Keys.aliceAddress.checksummed)","exp":\#(exp),"jti":"0123456789abcdef0123456789abcdef","v":1}"#
            let error = #expect(throws: PlaybackTokenError.self) { try authority.authenticate(authority.signed(payload: Array(payload.utf8))) }
            #expect(error?.reason == "malformed", "\(exp)")
            #expect(error?.description.contains("not a time in years 1970 to 9999") == true, "\(exp)")
        }
        let latest = #"{"addr":"\#(Keys.aliceAddress.checksummed)","exp":253402300799,"jti":"0123456789abcdef0123456789abcdef","v":1}"#
        let token = try authority.authenticate(authority.signed(payload: Array(latest.utf8)))
        #expect(try authority.authenticate(authority.encode(token)) == token)
    }

    /// The refusal's reason, or "accepted".
    func reason(_ authority: PlaybackTokenAuthority, _ text: String) async -> String {
        do {
            _ = try await authority.verify(text)
            return "accepted"
        } catch {
            return error.reason
        }
    }
}
