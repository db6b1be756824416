import Foundation
import Gate
import Hummingbird
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Ethereum

/// Whether an address satisfies a policy, as the chain says now (cached by the implementation).
public enum OwnershipVerdict: Sendable, Equatable {
    case granted
    /// Not an owner; the reason names the condition that failed.
    case denied(String)
    /// The chain could not be asked: no key is handed out (fail closed).
    case unavailable(String)
}

public protocol OwnershipChecking: Sendable {
    /// The verdict from the implementation's memory when it has one, else the work of asking.
    func verdict(for address: EthereumAddress, policy: AccessPolicy) -> Lookup<OwnershipVerdict>
}

/// NFT-gated playback: the viewer signs in with Ethereum, gets a short-lived playback token, and the
/// key of a gated asset is handed out only for a token whose address satisfies the asset's policy.
///
/// - `POST /v1/auth/nonce` → `{nonce, expires_at}` (single use, any replica).
/// - `POST /v1/auth/siwe` `{message, signature}` → `{token, address, expires_at}`; 401 names the
///   rule the message broke (`wrong_domain`, `nonce_replayed`, `expired`, …).
/// - `POST /v1/auth/revoke` with the token → 204; every origin refuses it from then on.
///
/// These routes answer anyone, so each is bounded: a per-client rate (``Options/signInRateLimit``,
/// 429 with `Retry-After`), a body size (``Options/maxBodyBytes``, 413), and the nonces outstanding
/// (``RedisNonceStore/maximumOutstanding``, 503 with `Retry-After`).
///
/// Segments and playlists stay public and cacheable; only keys are gated. A viewer's token travels
/// as `Authorization: Bearer …` or `?token=…`, which the origin appends to the key URIs of the
/// playlists it serves to that viewer.
public struct PlaybackGate: Sendable {
    public struct Options: Sendable {
        public var tokenLifetime: TimeInterval
        /// Per-client limits on the `/v1/auth/*` routes together (separate from playback's, and
        /// stricter: a sign-in is two requests); nil: none.
        public var signInRateLimit: RateLimiter.Options?
        /// The largest request body these routes read; a SIWE message and its signature are well
        /// under 2 kB.
        public var maxBodyBytes: Int

        public init(
            tokenLifetime: TimeInterval = 900, signInRateLimit: RateLimiter.Options? = RateLimiter.Options(rate: 5, burst: 20),
            maxBodyBytes: Int = 16 << 10
        ) {
            self.tokenLifetime = tokenLifetime
            self.signInRateLimit = signInRateLimit
            self.maxBodyBytes = maxBodyBytes
        }
    }

    let verifier: SIWEVerifier
    let nonces: RedisNonceStore
    let tokens: PlaybackTokenAuthority
    public let revocations: AnnouncedRevocations
    public let policies: PolicyStore
    let ownership: any OwnershipChecking
    let options: Options
    let logger: Logger
    /// Tokens already verified, by their text: a player asks for keys again and again with one
    /// token, and the HMAC and the payload's JSON need checking once. Expiry, asset scope and
    /// revocation are still checked on every request.
    let verified = NIOLockedValueBox<[String: PlaybackToken]>([:])
    let outcomes: [String: Counter]
    let signInLimiter: RateLimiter?

    public init(
        verifier: SIWEVerifier, nonces: RedisNonceStore, tokens: PlaybackTokenAuthority, revocations: AnnouncedRevocations,
        policies: PolicyStore, ownership: any OwnershipChecking, options: Options = Options(), logger: Logger
    ) {
        self.verifier = verifier
        self.nonces = nonces
        self.tokens = tokens
        self.revocations = revocations
        self.policies = policies
        self.ownership = ownership
        self.options = options
        self.logger = logger
        signInLimiter = options.signInRateLimit.map(RateLimiter.init(options:))
        var outcomes: [String: Counter] = [:]
        for outcome in ["granted", "denied", "unavailable", "missing_token", "malformed", "bad_signature", "expired", "revoked", "wrong_asset"] {
            outcomes[outcome] = Counter(label: "streamgate_gate_key_authorizations_total", dimensions: [("outcome", outcome)])
        }
        self.outcomes = outcomes
    }

    // MARK: - Keys

    /// Decides a key request for an asset with `policy`: granted, or the refusal (401 no or bad
    /// token, 403 not an owner, 503 the chain or the revocation list cannot be asked). Known from
    /// memory when the token was verified before and its revocation and owner's verdict are
    /// remembered; else the work of checking them.
    func authorize(_ fields: HTTPFields, queryToken: String?, asset: String, policy: AccessPolicy) -> Lookup<KeyAuthorization> {
        guard let text = Self.token(fields, query: queryToken) else {
            return .known(.refused("missing_token", Self.refusalAnswer(.unauthorized, reason: "missing_token", "this stream is gated: sign in and send the playback token")))
        }
        switch verify(text, asset: asset) {
        case .known(.failure(let error)):
            return .known(Self.refused(error))
        case .known(.success(let token)):
            switch ownership.verdict(for: token.address, policy: policy) {
            case .known(let verdict): return .known(decide(verdict, token, asset: asset))
            case .load(let work): return .load { self.decide(try await work(), token, asset: asset) }
            }
        case .load(let work):
            return .load {
                switch try await work() {
                case .failure(let error): return Self.refused(error)
                case .success(let token): return self.decide(try await self.ownership.verdict(for: token.address, policy: policy).value, token, asset: asset)
                }
            }
        }
    }

    /// Counts a key decision under its outcome (once, when the answer is given).
    func count(_ authorization: KeyAuthorization) {
        let outcome = switch authorization {
        case .granted: "granted"
        case .refused(let outcome, _): outcome
        }
        (outcomes[outcome] ?? Counter(label: "streamgate_gate_key_authorizations_total", dimensions: [("outcome", outcome)])).increment()
    }

    private func decide(_ verdict: OwnershipVerdict, _ token: PlaybackToken, asset: String) -> KeyAuthorization {
        switch verdict {
        case .granted:
            return .granted
        case .denied(let reason):
            return .refused("denied", Self.refusalAnswer(.forbidden, reason: "not_owner", "\(token.address.checksummed) does not satisfy the policy: \(reason)"))
        case .unavailable(let reason):
            logger.warning("key refused: the chain cannot be asked", metadata: ["asset": "\(asset)", "error": "\(reason)"])
            var refusal = Self.refusalAnswer(.serviceUnavailable, reason: "chain_unavailable", "ownership cannot be checked now; try again")
            refusal.headers[.retryAfter] = "2"
            return .refused("unavailable", refusal)
        }
    }

    private static func refused(_ error: PlaybackTokenError) -> KeyAuthorization {
        let status: HTTPResponse.Status = error.reason == "unavailable" ? .serviceUnavailable : .unauthorized
        return .refused(error.reason, refusalAnswer(status, reason: error.reason, error.message))
    }

    /// The token `text` checked for `asset`: its signature once (then remembered), its expiry,
    /// scope and revocation every time.
    func verify(_ text: String, asset: String) -> Lookup<Result<PlaybackToken, PlaybackTokenError>> {
        guard let token = verified.withLockedValue({ $0[text] }) else {
            return .load {
                do {
                    let token = try await self.tokens.verify(text, asset: asset)
                    self.verified.withLockedValue { verified in
                        if verified.count >= 100_000 { verified.removeAll() }
                        verified[text] = token
                    }
                    return .success(token)
                } catch let error as PlaybackTokenError {
                    return .failure(error)
                } catch {
                    return .failure(.unavailable("\(error)"))
                }
            }
        }
        guard Date() < token.expiresAt else {
            _ = verified.withLockedValue { $0.removeValue(forKey: text) }
            return .known(.failure(.expired(token.expiresAt)))
        }
        guard token.permits(asset: asset) else { return .known(.failure(.wrongAsset(expected: token.asset ?? "", requested: asset))) }
        switch revocations.revocation(of: token.id) {
        case .known(let revoked):
            return .known(revoked ? .failure(.revoked(id: token.id)) : .success(token))
        case .load(let work):
            return .load {
                do {
                    return try await work() ? .failure(.revoked(id: token.id)) : .success(token)
                } catch {
                    return .failure(.unavailable("revocation list: \(error)"))
                }
            }
        }
    }

    /// The playback token of a request: `Authorization: Bearer …`, else `?token=`.
    static func token(in request: Request) -> String? {
        token(request.headers, query: request.uri.queryParameters.get("token").map { String($0) })
    }

    static func token(_ fields: HTTPFields, query: String?) -> String? {
        if let header = fields[.authorization], header.hasPrefix("Bearer ") {
            // Byte-level trimming: this runs on every key request.
            let value = header.utf8.dropFirst(7).drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            let end = value.lastIndex { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            if let end { return String(Substring(value[...end])) }
        }
        if let query, !query.isEmpty { return query }
        return nil
    }

    static func refusal(_ status: HTTPResponse.Status, reason: String, _ message: String) -> Response {
        refusalAnswer(status, reason: reason, message).response
    }

    /// A refusal's JSON (`{"error": …, "reason": …}`), never stored by any cache.
    static func refusalAnswer(_ status: HTTPResponse.Status, reason: String, _ message: String) -> PlaybackResponse {
        PlaybackResponse.json(status, ["error": message, "reason": reason])
    }
}

/// A key request's decision (``PlaybackGate/authorize(_:queryToken:asset:policy:)``).
enum KeyAuthorization: Sendable {
    case granted
    /// The outcome it is counted under, and the answer.
    case refused(String, PlaybackResponse)
}
