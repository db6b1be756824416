import Foundation
import Hummingbird
import Metrics
import NIOCore

// What bounds the sign-in routes, which answer anyone: a per-client rate and a body size.

extension PlaybackGate {
    /// Runs `handler` with the request's body unless the client is over its sign-in rate (429,
    /// checked before a byte of the body is read) or the body is over ``Options/maxBodyBytes``
    /// (413, by its `Content-Length` when it has one, else while it arrives).
    func bounded<Context: RequestContext>(
        _ request: Request, _ context: Context, _ handler: (ByteBuffer) async throws -> Response
    ) async throws -> Response {
        if let signInLimiter, let wait = signInLimiter.admit((context as? any RemoteAddressRequestContext)?.remoteAddress) {
            let seconds = max(1, Int64(wait.rounded(.up)))
            return Self.refused(
                "rate_limited",
                Self.refusal(.tooManyRequests, reason: "rate_limited", "too many sign-in requests from this address; retry in \(seconds) s"),
                retryAfter: seconds
            )
        }
        let limit = options.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return Self.tooLarge(limit)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            return Self.tooLarge(limit)
        }
        return try await handler(body)
    }

    private static func tooLarge(_ limit: Int) -> Response {
        refused("too_large", refusal(.contentTooLarge, reason: "too_large", "the request body is over \(limit / 1024) KiB"))
    }

    /// Counts a sign-in route's refusal by reason, and adds `Retry-After` when given.
    static func refused(_ reason: String, _ response: Response, retryAfter: Int64? = nil) -> Response {
        Counter(label: "streamgate_gate_auth_refused_total", dimensions: [("reason", reason)]).increment()
        var response = response
        if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }
}
