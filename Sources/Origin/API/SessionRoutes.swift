import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Vault

/// `POST /v1/session` `{api_key}` → a session cookie and `{csrf_token, expires_at}`;
/// `GET /v1/session` → the same figures for the cookie sent (401 without a live one);
/// `DELETE /v1/session` → the cookie removed and its session revoked.
extension JobAPI {
    func registerSessionRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.post("/v1/session") { request, _ in try await self.openSession(request) }
        router.get("/v1/session") { request, _ in try await self.showSession(request) }
        router.delete("/v1/session") { request, _ in try await self.closeSession(request) }
    }

    struct SessionAnswer: Encodable {
        var csrfToken: String
        var expiresAt: Int64
        enum CodingKeys: String, CodingKey { case csrfToken = "csrf_token", expiresAt = "expires_at" }
    }

    private func openSession(_ request: Request) async throws -> Response {
        guard let browserSessions else { return Self.error(.notFound, "browser sign-in is off") }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: 4096) } catch { return Self.error(.contentTooLarge, "the sign-in is over 4 KiB") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] else {
            return Self.error(.badRequest, "the body must be a JSON object {\"api_key\": …}", field: "body")
        }
        guard let key = object["api_key"] as? String, !key.isEmpty else { return Self.error(.badRequest, "field 'api_key' is required", field: "api_key") }
        guard isKnownKey(key) else {
            logger.notice("browser sign-in refused: unknown API key")
            return Self.error(.unauthorized, "unknown API key", field: "api_key")
        }
        let (value, expires) = try browserSessions.open(keyDigest: Digest.sha256(Array(key.utf8)))
        var answer = try Self.json(.ok, SessionAnswer(csrfToken: browserSessions.csrfToken(for: value), expiresAt: expires))
        answer.setCookie(BrowserSessions.cookie(value, maxAge: Int(browserSessions.lifetime.components.seconds), secure: Self.cameOverTLS(request)))
        return answer
    }

    /// What a request's session cookie is worth: the one check of a browser session (signature,
    /// expiry, key still known, not signed out) for every route.
    enum BrowserSessionCheck {
        /// No cookie, or browser sign-in is off.
        case none
        case ended(Response)
        /// Whether it was signed out cannot be asked now.
        case unavailable(Response)
        case live(value: String, session: BrowserSessions.Session)
    }

    func browserSession(_ request: Request) async -> BrowserSessionCheck {
        guard let browserSessions, let value = request.cookies[BrowserSessions.cookieName]?.value else { return .none }
        guard let session = browserSessions.session(value, knownKeyDigests: keyDigests) else {
            return .ended(Self.error(.unauthorized, "the session has ended: sign in again", field: "Cookie"))
        }
        do {
            guard try await queue.redis.send(["EXISTS", queue.keys.revokedSession(session.nonce)]).int == 0 else {
                return .ended(Self.error(.unauthorized, "the session was signed out: sign in again", field: "Cookie"))
            }
        } catch {
            return .unavailable(Self.error(.serviceUnavailable, "sessions cannot be checked now: the job queue is unavailable"))
        }
        return .live(value: value, session: session)
    }

    /// Removes the cookie, and revokes its session on every origin until it would have expired, so
    /// a copy of the cookie taken before is no good either.
    private func closeSession(_ request: Request) async throws -> Response {
        let check = await browserSession(request)
        if case .unavailable(let refusal) = check { return refusal }
        if case .live(_, let session) = check {
            let remaining = max(1, session.expiresAt - Int64(Date().timeIntervalSince1970))
            do {
                _ = try await queue.redis.send(["SET", queue.keys.revokedSession(session.nonce), "1", "EX", String(remaining)])
            } catch {
                return Self.error(.serviceUnavailable, "the session cannot be signed out now: the job queue is unavailable")
            }
        }
        var answer = Response(status: .noContent)
        answer.setCookie(BrowserSessions.cookie(nil, maxAge: 0, secure: Self.cameOverTLS(request)))
        return answer
    }

    private func showSession(_ request: Request) async throws -> Response {
        switch await browserSession(request) {
        case .none: return Self.error(.unauthorized, "not signed in", field: "Cookie")
        case .ended(let refusal), .unavailable(let refusal): return refusal
        case .live(let value, let session):
            return try Self.json(.ok, SessionAnswer(csrfToken: browserSessions?.csrfToken(for: value) ?? "", expiresAt: session.expiresAt))
        }
    }

    /// Whether a proxy in front received the request over TLS: the cookie is then `Secure`.
    static func cameOverTLS(_ request: Request) -> Bool {
        request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }
}
