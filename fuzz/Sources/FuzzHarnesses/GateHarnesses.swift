import Foundation
import Gate

/// What the gate reads from viewers: playback tokens, Sign-In with Ethereum messages and their
/// timestamps, and the access policies operators upload.
enum GateHarnesses {
    /// The secret and the time of the token tests, so their tokens make good seeds.
    static let now = Date(timeIntervalSince1970: 1_736_942_400)  // 2025-01-15T12:00:00Z
    static let authority = try! PlaybackTokenAuthority(secret: [UInt8](repeating: 7, count: 32), clock: { now })

    /// A token as a player presents it, then the same bytes as a payload signed with the right key,
    /// which is the only way past the MAC to the payload reader.
    static let playbackToken = Harness("playback-token", maxLength: 1024, "PlaybackTokenAuthority.authenticate, on presented and on signed bytes") { bytes in
        check(bytes.text, signed: false)
        check(authority.signed(payload: Array(bytes)), signed: true)
    }

    private static func check(_ text: String, signed: Bool) {
        do {
            let token = try authority.authenticate(text, asset: "a1")
            require(token.permits(asset: "a1"), "a token for asset \(token.asset ?? "-") passed as one for a1")
            require(now < token.expiresAt, "an expired token passed")
            let again = try? authority.authenticate(authority.encode(token))
            require(again == token, "token \(token) encoded does not verify to itself")
        } catch {
            require(!(signed && error == .badSignature), "a payload signed with the key was refused as a bad signature")
            // What the gate logs and answers: every refusal must be describable.
            _ = "\(error)"
        }
    }

    /// EIP-4361 messages: any message the parser accepts, written back, parses to the same message.
    static let siwe = Harness("siwe", maxLength: 2048, "SIWEMessage(parsing:), and parsing its text again") { bytes in
        let message: SIWEMessage
        do {
            message = try SIWEMessage(parsing: bytes.text)
        } catch {
            _ = "\(error)"
            return
        }
        let written = message.text
        let again: SIWEMessage
        do {
            again = try SIWEMessage(parsing: written)
        } catch {
            fatalError("invariant broken: a parsed message's text does not parse: \(error)\n\(written)")
        }
        require(again == message, "a parsed message's text parses to another message:\n\(written)")
    }

    /// The instants RFC 3339 can write: 0000-01-01T00:00:00Z up to the end of 9999.
    private static let writable = -62_167_219_200.0..<253_402_300_800.0

    /// RFC 3339 timestamps (SIWE times): parsed, and written back in UTC.
    static let rfc3339 = Harness("rfc3339", maxLength: 128, "RFC3339Timestamp(text), and the UTC text of its instant") { bytes in
        let timestamp: RFC3339Timestamp
        do {
            timestamp = try RFC3339Timestamp(bytes.text)
        } catch {
            _ = "\(error)"
            return
        }
        let seconds = timestamp.date.timeIntervalSince1970
        require(seconds.isFinite, "'\(timestamp.text)' is no instant")
        // An offset can carry a time at the edge of year 0 or 9999 out of what can be written.
        guard writable.contains(seconds) else { return }
        let written = RFC3339Timestamp(timestamp.date)
        let again = try? RFC3339Timestamp(written.text)
        require(again != nil, "'\(timestamp.text)' written in UTC as '\(written.text)' does not parse")
        // Written with milliseconds: the instant may lose what is below them, nothing more.
        require(abs(again!.date.timeIntervalSince1970 - seconds) < 0.0011, "'\(timestamp.text)' written as '\(written.text)' moved")
    }

    /// Access policies: anything accepted keeps to the limits, and its canonical text reads back as
    /// the same policy.
    static let accessPolicy = Harness("access-policy", maxLength: 4096, "AccessPolicy(json:), validate(), canonicalJSON read back") { bytes in
        let policy: AccessPolicy
        do {
            policy = try AccessPolicy(json: bytes)
        } catch {
            _ = "\(error)"
            return
        }
        do {
            try policy.validate()
        } catch {
            fatalError("invariant broken: a policy read from JSON breaks the limits: \(error)")
        }
        let canonical = policy.canonicalJSON
        let again = try? AccessPolicy(json: canonical)
        require(again?.canonicalJSON == canonical, "the canonical text does not read back as itself: \(canonical)")
        require(again?.policyID == policy.policyID, "the canonical text reads back with another policy id")
        // What the policy API returns: the Codable form reads back as the same policy too.
        let encoded = try? JSONEncoder().encode(policy)
        let decoded = encoded.flatMap { try? JSONDecoder().decode(AccessPolicy.self, from: $0) }
        require(decoded?.canonicalJSON == canonical, "the encoded policy does not decode as itself: \(canonical)")
        _ = policy.contracts
    }
}
