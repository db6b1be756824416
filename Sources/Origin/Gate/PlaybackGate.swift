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
    func verdict(for address: EthereumAddress, policy: AccessPolicy) async -> OwnershipVerdict
    /// The verdict when it is known without waiting (a cached answer); nil otherwise.
    func cachedVerdict(for address: EthereumAddress, policy: AccessPolicy) -> OwnershipVerdict?
}

extension OwnershipChecking {
    public func cachedVerdict(for address: EthereumAddress, policy: AccessPolicy) -> OwnershipVerdict? { nil }
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

    // MARK: - Sign-in

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/v1/auth/nonce") { request, context in
            try await self.bounded(request, context) { _ in try await self.issueNonce() }
        }
        router.post("/v1/auth/siwe") { request, context in
            try await self.bounded(request, context) { body in try await self.signIn(body) }
        }
        router.post("/v1/auth/revoke") { request, context in
            try await self.bounded(request, context) { _ in try await self.revoke(request) }
        }
    }

    private func issueNonce() async throws -> Response {
        do {
            let nonce = try await nonces.issue()
            let expires = Date().addingTimeInterval(Double(nonces.lifetime.components.seconds))
            return try JobAPI.json(.ok, ["nonce": nonce, "expires_at": RFC3339Timestamp(expires).text])
        } catch let full as NonceStoreFull {
            logger.warning("sign-in nonces at their bound; refusing more", metadata: ["bound": "\(nonces.maximumOutstanding)"])
            let seconds = max(1, full.retryAfter.components.seconds + (full.retryAfter.components.attoseconds > 0 ? 1 : 0))
            let refusal = Self.refusal(.serviceUnavailable, reason: "too_many_nonces", "too many sign-ins are under way; retry later")
            return Self.refused("too_many_nonces", refusal, retryAfter: seconds)
        } catch {
            logger.error("cannot issue a sign-in nonce", metadata: ["error": "\(error)"])
            return JobAPI.error(.serviceUnavailable, "sign-in is unavailable: nonces cannot be stored")
        }
    }

    struct SignInBody: Decodable {
        let message: String?
        let signature: String?
    }

    private func signIn(_ bytes: ByteBuffer) async throws -> Response {
        let body: SignInBody
        do {
            body = try JSONDecoder().decode(SignInBody.self, from: Data(buffer: bytes))
        } catch {
            return Self.siwe("malformed", JobAPI.error(.badRequest, "the body must be JSON {\"message\": …, \"signature\": …}"))
        }
        guard let message = body.message else { return Self.siwe("malformed", JobAPI.error(.badRequest, "field 'message' is required", field: "message")) }
        guard let signature = body.signature else {
            return Self.siwe("malformed", JobAPI.error(.badRequest, "field 'signature' is required", field: "signature"))
        }
        let verified: SIWEVerification
        do {
            verified = try await verifier.verify(message: message, signature: signature)
        } catch {
            let status: HTTPResponse.Status = switch error.reason {
            case "malformed": .badRequest
            case "unavailable": .serviceUnavailable
            default: .unauthorized
            }
            return Self.siwe(error.reason, Self.refusal(status, reason: error.reason, error.message))
        }
        let token = try tokens.issue(for: verified.address, lifetime: options.tokenLifetime)
        Counter(label: "streamgate_gate_siwe_total", dimensions: [("outcome", "accepted")]).increment()
        return try JobAPI.json(.ok, [
            "token": tokens.encode(token), "address": verified.address.checksummed,
            "expires_at": RFC3339Timestamp(token.expiresAt).text,
        ])
    }

    private static func siwe(_ outcome: String, _ response: Response) -> Response {
        Counter(label: "streamgate_gate_siwe_total", dimensions: [("outcome", outcome)]).increment()
        return response
    }

    private func revoke(_ request: Request) async throws -> Response {
        guard let text = Self.token(in: request) else {
            return Self.refusal(.unauthorized, reason: "missing_token", "the token to revoke goes in Authorization: Bearer <token>")
        }
        do {
            let token = try await tokens.verify(text)
            try await tokens.revoke(token)
            return Response(status: .noContent)
        } catch let error as PlaybackTokenError {
            return Self.refusal(.unauthorized, reason: error.reason, error.message)
        }
    }

    // MARK: - Keys

    /// Decides a key request for an asset with `policy`: nil when the key may be served, else the
    /// refusal (401 no or bad token, 403 not an owner, 503 the chain cannot be asked).
    func authorize(_ request: Request, asset: String, policy: AccessPolicy) async -> Response? {
        guard let text = Self.token(in: request) else {
            return key("missing_token", Self.refusal(.unauthorized, reason: "missing_token", "this stream is gated: sign in and send the playback token"))
        }
        let token: PlaybackToken
        do {
            token = try await verify(text, asset: asset)
        } catch {
            let status: HTTPResponse.Status = error.reason == "unavailable" ? .serviceUnavailable : .unauthorized
            return key(error.reason, Self.refusal(status, reason: error.reason, error.message))
        }
        switch await ownership.verdict(for: token.address, policy: policy) {
        case .granted:
            outcomes["granted"]?.increment()
            return nil
        case .denied(let reason):
            return key("denied", Self.refusal(.forbidden, reason: "not_owner", "\(token.address.checksummed) does not satisfy the policy: \(reason)"))
        case .unavailable(let reason):
            logger.warning("key refused: the chain cannot be asked", metadata: ["asset": "\(asset)", "error": "\(reason)"])
            var response = Self.refusal(.serviceUnavailable, reason: "chain_unavailable", "ownership cannot be checked now; try again")
            response.headers[.retryAfter] = "2"
            return key("unavailable", response)
        }
    }

    /// ``authorize(_:asset:policy:)`` for the event-loop fast path: true when memory alone shows
    /// the request may have the key (a token verified before, unexpired, for this asset, not
    /// revoked, whose address has a cached grant). false: the full check must run (it gives every
    /// refusal and its reason).
    func grantedFromMemory(_ fields: HTTPFields, queryToken: String?, asset: String, policy: AccessPolicy) -> Bool {
        guard let text = Self.token(fields, query: queryToken),
              let token = verified.withLockedValue({ $0[text] }),
              Date() < token.expiresAt, token.permits(asset: asset),
              revocations.isRevokedFromMemory(id: token.id) == false,
              case .granted? = ownership.cachedVerdict(for: token.address, policy: policy)
        else { return false }
        outcomes["granted"]?.increment()
        return true
    }

    private func key(_ outcome: String, _ response: Response) -> Response {
        (outcomes[outcome] ?? Counter(label: "streamgate_gate_key_authorizations_total", dimensions: [("outcome", outcome)])).increment()
        return response
    }

    /// ``PlaybackTokenAuthority/verify(_:asset:)``, remembering tokens whose signature was checked.
    func verify(_ text: String, asset: String) async throws(PlaybackTokenError) -> PlaybackToken {
        guard let token = verified.withLockedValue({ $0[text] }) else {
            let token = try await tokens.verify(text, asset: asset)
            verified.withLockedValue { verified in
                if verified.count >= 100_000 { verified.removeAll() }
                verified[text] = token
            }
            return token
        }
        guard Date() < token.expiresAt else {
            _ = verified.withLockedValue { $0.removeValue(forKey: text) }
            throw .expired(token.expiresAt)
        }
        guard token.permits(asset: asset) else { throw .wrongAsset(expected: token.asset ?? "", requested: asset) }
        let revoked: Bool
        do { revoked = try await revocations.isRevoked(id: token.id) } catch { throw .unavailable("revocation list: \(error)") }
        if revoked { throw .revoked(id: token.id) }
        return token
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
        var response = (try? JobAPI.json(status, ["error": message, "reason": reason])) ?? Response(status: status)
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
