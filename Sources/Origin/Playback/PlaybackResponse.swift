import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

// The answers playback gives: files (validators, 304, gzip, ranges), viewers' playlists, CORS,
// rate-limit refusals.

/// A playback answer, its body already in memory: what both the router and the fast path
/// (``PlaybackFastPath``) send.
struct PlaybackResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    /// nil: no body (HEAD, 304).
    var body: ByteBuffer?
    /// Given only to the fast path: the status line and fields already encoded (`headers` is
    /// then empty; ``HTTPHeadEncoding``).
    var encodedHead: ByteBuffer? = nil
    /// The body lies in an L1 object's page-mapped memory, whose pages the fast path may lend
    /// to the socket instead of copying them (``ObjectBytes``).
    var lendsBody = false

    var response: Response {
        Response(status: status, headers: headers, body: body.map { .init(byteBuffer: $0) } ?? .init())
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> PlaybackResponse {
        let body = ByteBuffer(string: text)
        return PlaybackResponse(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8", .contentLength: String(body.readableBytes)],
            body: body
        )
    }

    /// `value` as JSON (sorted keys), never stored by a cache.
    static func json(_ status: HTTPResponse.Status, _ value: [String: String]) -> PlaybackResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = ByteBuffer(bytes: (try? encoder.encode(value)) ?? Data())
        return PlaybackResponse(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store", .contentLength: String(body.readableBytes)], body: body
        )
    }
}

extension OriginRoutes {
    /// The answer for a file L1 (or a load) produced: headers a CDN can act on, 304, gzip, ranges.
    func fileResponse(_ object: CachedObject, type: MediaType, versioned: Bool, request: HTTPRequest) -> PlaybackResponse {
        let fields = request.headerFields
        let useGzip = object.gzipped != nil && fields[.range] == nil && HTTPSemantics.acceptsGzip(fields[.acceptEncoding])
        let eTag = useGzip ? object.gzipETag : object.eTag
        let cacheControl = versioned ? object.cacheControl.versioned : object.cacheControl.unversioned
        var headers = Self.validatorHeaders(type: type, cacheControl: cacheControl, lastModified: object.lastModifiedText, eTag: eTag)

        if HTTPSemantics.notModified(
            ifNoneMatch: fields[.ifNoneMatch], ifModifiedSince: object.isGrowing ? nil : fields[.ifModifiedSince], eTag: eTag,
            lastModified: object.lastModified
        ) {
            return PlaybackResponse(status: .notModified, headers: headers, body: nil)
        }
        let isHead = request.method == .head
        if useGzip, let gzipped = object.gzipped {
            headers[.contentEncoding] = "gzip"
            headers[.contentLength] = String(gzipped.readableBytes)
            return PlaybackResponse(status: .ok, headers: headers, body: isHead ? nil : gzipped)
        }
        headers[.acceptRanges] = "bytes"
        let size = object.body.readableBytes
        switch HTTPSemantics.range(fields[.range], ifRange: fields[.ifRange], size: size, eTag: object.eTag) {
        case .whole:
            headers[.contentLength] = object.sizeText
            return PlaybackResponse(status: .ok, headers: headers, body: isHead ? nil : object.body, lendsBody: object.lendsBody)
        case .partial(let lower, let upper):
            headers[.contentRange] = "bytes \(lower)-\(upper - 1)/\(size)"
            headers[.contentLength] = String(upper - lower)
            let slice = object.body.getSlice(at: object.body.readerIndex + lower, length: upper - lower) ?? ByteBuffer()
            return PlaybackResponse(status: .partialContent, headers: headers, body: isHead ? nil : slice, lendsBody: object.lendsBody)
        case .unsatisfiable:
            var refusal = PlaybackResponse.plain(.rangeNotSatisfiable, "the range is outside the \(size) bytes of this object\n")
            refusal.headers[.contentRange] = "bytes */\(size)"
            return refusal
        }
    }

    func cacheControl(versioned: Bool) -> String {
        versioned ? "public, max-age=31536000, immutable" : entryCacheControl
    }

    /// What every answer for a file carries first: its type, how long it may be kept, and its
    /// validators.
    static func validatorHeaders(type: MediaType, cacheControl: String, lastModified: String, eTag: String) -> HTTPFields {
        var headers = HTTPFields()
        headers.reserveCapacity(12)
        headers[.contentType] = type.contentType
        headers[.cacheControl] = cacheControl
        headers[.lastModified] = lastModified
        if type == .playlist { headers[.vary] = "Accept-Encoding" }
        headers[.eTag] = eTag
        return headers
    }

    /// The head (status line and fields) of the plain 200 answer for the whole of `object`, the
    /// same as ``fileResponse(_:type:versioned:request:)`` gives a request with no range, no
    /// validators and no gzip, encoded once per object and URL form (``CachedObject/wholeHeads``).
    static func wholeHead(type: MediaType, cacheControl: String, lastModified: String, eTag: String, size: String) -> ByteBuffer {
        var headers = validatorHeaders(type: type, cacheControl: cacheControl, lastModified: lastModified, eTag: eTag)
        headers[.acceptRanges] = "bytes"
        headers[.contentLength] = size
        var head = ByteBuffer()
        HTTPHeadEncoding.write(status: .ok, headers, into: &head)
        return head
    }

    /// A gated asset's playlist for one viewer: the token rides along on the URIs of the playlists
    /// and keys it lists (segments stay shared), so the response is private and never stored.
    func tailored(_ object: CachedObject, type: MediaType, token: String, method: HTTPRequest.Method) -> PlaybackResponse {
        let query = "token=" + PlaylistRewriter.queryValue(token)
        // A storyboard's sheets are gated too: each cue's URI carries the token.
        let body = type == .webVTT
            ? PlaylistRewriter.appendingQueryToStoryboard(object.body, query) : PlaylistRewriter.appendingQuery(to: object.body, query)
        var headers = HTTPFields()
        headers[.contentType] = type.contentType
        headers[.cacheControl] = "private, no-store"
        headers[.contentLength] = String(body.readableBytes)
        return PlaybackResponse(status: .ok, headers: headers, body: method == .head ? nil : body)
    }

    /// A 429 when `client` is over its rate (counted), nil when it may go on.
    func tooManyRequests(_ client: PlaybackClient) -> PlaybackResponse? {
        guard let limiter, let wait = limiter.admit(client: client.limiterKey) else { return nil }
        metrics.rateLimited.increment()
        var response = PlaybackResponse.plain(.tooManyRequests, "too many requests; retry later\n")
        response.headers[.retryAfter] = String(max(1, Int(wait.rounded(.up))))
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// Never stored by a CDN: a growing version's next segment is missing only until it is sealed.
    static var notFound: PlaybackResponse {
        var response = PlaybackResponse.plain(.notFound, "not found\n")
        response.headers[.cacheControl] = "no-store"
        return response
    }

    // MARK: - CORS

    /// A list of allowed origins (not `*`): answers differ by `Origin`, even to requests without one.
    var everyAnswerVariesByOrigin: Bool {
        !options.corsOrigins.isEmpty && !options.corsOrigins.contains("*")
    }

    private func allowedOrigin(_ fields: HTTPFields) -> String? {
        guard !options.corsOrigins.isEmpty, let origin = fields[.origin] else { return nil }
        if options.corsOrigins.contains("*") { return "*" }
        return options.corsOrigins.contains(origin) ? origin : nil
    }

    func applyCORS(to headers: inout HTTPFields, _ fields: HTTPFields) {
        guard let allowed = allowedOrigin(fields) else {
            if everyAnswerVariesByOrigin { headers[.vary] = Self.varying(headers[.vary], "Origin") }
            return
        }
        headers[.accessControlAllowOrigin] = allowed
        headers[.accessControlExposeHeaders] = "Content-Length, Content-Range, ETag, Accept-Ranges, Retry-After"
        if allowed != "*" { headers[.vary] = Self.varying(headers[.vary], "Origin") }
    }

    func preflight(_ fields: HTTPFields) -> PlaybackResponse {
        var headers = HTTPFields()
        headers[.allow] = "GET, HEAD, OPTIONS"
        if allowedOrigin(fields) != nil {
            headers[.accessControlAllowMethods] = "GET, HEAD, OPTIONS"
            headers[.accessControlAllowHeaders] = "Range, Authorization, If-None-Match, If-Modified-Since"
            headers[.accessControlMaxAge] = "86400"
        }
        return PlaybackResponse(status: .noContent, headers: headers, body: nil)
    }

    private static func varying(_ existing: String?, _ name: String) -> String {
        guard let existing, !existing.isEmpty else { return name }
        return existing + ", " + name
    }
}
