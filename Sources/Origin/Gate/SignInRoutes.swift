import Foundation
import Gate
import Hummingbird
import Metrics
import NIOCore

// The sign-in routes of ``PlaybackGate``: a nonce, a signed SIWE message traded for a playback
// token, and the token's revocation. Each is bounded (``bounded(_:_:_:)``, SignInLimits.swift).

extension PlaybackGate {
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
}
