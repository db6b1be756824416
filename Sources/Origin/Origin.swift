import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Store
import Gate

/// Where the origin listens.
public struct OriginConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// What each connection and each client may hold (deadlines, caps).
    public var connections: ConnectionLimits

    public init(host: String = "127.0.0.1", port: Int = 8080, connections: ConnectionLimits = ConnectionLimits()) {
        self.host = host
        self.port = port
        self.connections = connections
    }
}

/// How the origin serves and caches.
public struct OriginOptions: Sendable {
    /// L1's budget, bytes (0 turns it off).
    public var l1Bytes: Int
    /// `max-age` of what lives at version-less URLs (the entry playlists), seconds. Everything
    /// they point at is versioned and immutable.
    public var entryMaxAge: Int
    /// How many segments after the one asked for are read ahead into L1 and L2 (0: none).
    public var warmSegments: Int
    /// Origins web players may fetch from (`*` for any); empty turns CORS off.
    public var corsOrigins: [String]
    /// Per-client rate limits; nil: none.
    public var rateLimit: RateLimiter.Options?
    /// Answer L1 hits on the event loop that read the request (``PlaybackFastPath``); off, every
    /// request goes through the router. The answers are the same either way.
    public var fastPath: Bool
    /// With ``fastPath``: read hits straight from the socket's bytes, in front of the HTTP decoder
    /// (``ByteFastPath``); off, only decoded requests are answered early. Same answers either way.
    public var byteFastPath = true
    /// With ``byteFastPath``: send large L1 bodies by lending their pages to the socket (`vmsplice`
    /// and `splice`, ``PageLender``) instead of copying them. Same bytes either way.
    public var zeroCopy = true

    public init(
        l1Bytes: Int = 256 << 20, entryMaxAge: Int = 60, warmSegments: Int = 3, corsOrigins: [String] = ["*"],
        rateLimit: RateLimiter.Options? = nil, fastPath: Bool = true
    ) {
        self.fastPath = fastPath
        self.l1Bytes = l1Bytes
        self.entryMaxAge = entryMaxAge
        self.warmSegments = warmSegments
        self.corsOrigins = corsOrigins
        self.rateLimit = rateLimit
    }
}

/// Turns a stored, wrapped content key into the 16 key bytes: `(asset, key id, stored bytes)`.
/// It throws when the stored key does not unwrap (wrong master key, tampering).
public typealias KeyUnwrapper = @Sendable (AssetID, String, [UInt8]) throws -> [UInt8]

/// The request context of StreamGate's server: Hummingbird's, plus the client's address (for rate
/// limits).
public struct OriginRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// The origin application: ``OriginRoutes`` on an HTTP/1.1 server.
public func buildOriginApplication(
    configuration: OriginConfiguration,
    store: AssetStore,
    unwrapKey: @escaping KeyUnwrapper,
    logger: Logger
) -> some ApplicationProtocol {
    buildServerApplication(
        configuration: configuration, origin: OriginRoutes(store: store, unwrapKey: unwrapKey, logger: logger),
        api: nil, health: HealthRoutes(store: store, queue: nil, metrics: nil), logger: logger
    )
}

/// The whole HTTP server: playback, and when a queue is configured the job API, plus health and
/// metrics.
public func buildServerApplication(
    configuration: OriginConfiguration,
    origin: OriginRoutes,
    api: JobAPI?,
    health: HealthRoutes,
    logger: Logger
) -> some ApplicationProtocol {
    let router = Router(context: OriginRequestContext.self)
    origin.register(on: router)
    origin.gate?.register(on: router)
    api?.register(on: router)
    health.register(on: router)
    let serverName = "StreamGate"
    let fastPath = origin.options.fastPath
    return Application(
        router: router,
        server: .guardedHTTP1(limits: configuration.connections) {
            [DrainBeforeClose()] + (fastPath ? [PlaybackFastPath(routes: origin, serverName: serverName)] : [])
        },
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: serverName,
            availableConnectionsDelegate: MaximumAvailableConnections(configuration.connections.effectiveTotal, logger: logger)
        ),
        logger: logger
    )
}

/// The playback routes:
///
/// - `GET|HEAD /v/{asset}/master.m3u8` and `/v/{asset}/{rendition}/index.m3u8`: the entry
///   playlists of the published version, their URIs rewritten to name that version
///   (``PlaylistRewriter``); short-lived, with an ETag that changes on republish.
/// - `GET|HEAD /v/{asset}/{version}/…`: playlists and segments of one version, immutable.
/// - `GET|HEAD /v/{asset}/{rendition}/{segment}`: a segment of the published version.
/// - `GET|HEAD /v/{asset}[/{version}]/keys/{key_id}`: the content key, unwrapped; never cached.
///
/// Objects come from L1 (``ByteCache``), then L2 (``SharedCache``, when configured), then the
/// store, with one load per object however many requests miss at once (``SingleFlight``). Every
/// name is checked against the store's grammar before any file is touched, so `..`, encoded dots,
/// absolute paths and NUL bytes are simply not found. Segments are served exactly as stored:
/// encrypted.
public struct OriginRoutes: Sendable {
    let store: AssetStore
    let unwrapKey: KeyUnwrapper
    let logger: Logger
    let threadPool: NIOThreadPool
    let options: OriginOptions
    /// `Cache-Control` of the entry playlists (made once: every request to one sends it).
    let entryCacheControl: String
    let directory: AssetDirectory
    /// L1: files of published versions, and the rewritten entry playlists. Keys are never cached.
    public let cache: ByteCache<CachedObject>
    /// L2, shared by replicas; nil without Redis.
    let shared: SharedCache?
    let limiter: RateLimiter?
    /// NFT gating of keys; nil serves the keys of assets without a policy only (``policies``).
    public let gate: PlaybackGate?
    /// Assets' policies: the gate's, or with Redis and no gate, read only so that the key of a
    /// gated asset is refused here rather than handed out. nil (no Redis): every key is served.
    let policies: PolicyStore?
    /// Unwrapped content keys, by version and key id: memory only, so a key request does not read
    /// and unwrap the file each time. Never in L1, L2 or any HTTP cache.
    let keys = NIOLockedValueBox<[String: [UInt8]]>([:])
    let flights: SingleFlight<CachedObject>
    let metrics: OriginMetrics
    let counters = NIOLockedValueBox(Counters())
    let warming = NIOLockedValueBox(0)
    /// The last segment number each client asked for, per rendition: tells playing on from seeking.
    let lastSegments = NIOLockedValueBox<[PlayingStream: Int]>([:])

    /// What the origin did, for tests (`/metrics` has the same, by level).
    public struct Counters: Sendable, Equatable {
        public var l1Hits = 0
        public var l2Hits = 0
        public var storeReads = 0
        public var coalesced = 0
        public var warmed = 0
        /// Requests answered on the event loop (``PlaybackFastPath``), without the router.
        public var fastPath = 0
        /// Of those, the ones answered from the socket's bytes, before HTTP decoding (``ByteFastPath``).
        public var fromBytes = 0
        /// Of those, the ones whose body went to the socket by lending its pages (``PageLender``),
        /// and how many body bytes went that way (the rest of a body the socket did not take at
        /// once is copied through NIO).
        public var lent = 0
        public var lentBytes = 0
    }

    public init(
        store: AssetStore, unwrapKey: @escaping KeyUnwrapper, logger: Logger, threadPool: NIOThreadPool = .singleton,
        options: OriginOptions = OriginOptions(), shared: SharedCache? = nil, gate: PlaybackGate? = nil, policies: PolicyStore? = nil
    ) {
        self.gate = gate
        self.policies = gate?.policies ?? policies
        self.store = store
        self.unwrapKey = unwrapKey
        self.logger = logger
        self.threadPool = threadPool
        self.options = options
        entryCacheControl = "public, max-age=\(options.entryMaxAge)"
        self.shared = shared
        directory = AssetDirectory(store: store, threadPool: threadPool)
        limiter = options.rateLimit.map(RateLimiter.init(options:))
        let metrics = OriginMetrics()
        self.metrics = metrics
        flights = SingleFlight(onJoin: { metrics.coalesced.increment() })
        // Segments run to a few MB; about 500 kB an object sizes the frequency sketch.
        cache = ByteCache(capacity: options.l1Bytes, expectedEntries: max(64, options.l1Bytes / 500_000))
    }

    /// - Parameter cacheBytes: the L1 budget (0 turns it off).
    public init(
        store: AssetStore, unwrapKey: @escaping KeyUnwrapper, logger: Logger, threadPool: NIOThreadPool = .singleton,
        cacheBytes: Int
    ) {
        self.init(store: store, unwrapKey: unwrapKey, logger: logger, threadPool: threadPool, options: OriginOptions(l1Bytes: cacheBytes))
    }

    public var statistics: Counters {
        var counts = counters.withLockedValue { $0 }
        counts.coalesced = flights.coalesced
        return counts
    }

    // MARK: - Invalidation

    /// An asset was republished or deleted: forget its versions and drop its objects from L1.
    public func assetChanged(_ asset: String) {
        directory.forget(asset)
        policies?.forget(asset)
        let prefix = asset + "/"
        cache.removeAll { $0.hasPrefix(prefix) }
    }

    /// Whether changes are announced (the Redis channel is up). Without announcements the origin
    /// re-reads which version is published every second; with them, every 30 s as a safety net.
    public func announcements(listening: Bool) {
        directory.setFreshness(seconds: listening ? 30 : 1)
        directory.forgetAll()
        policies?.announcements(listening: listening)
    }

    // MARK: - Routes

    public func register<Context: RequestContext>(on router: Router<Context>) {
        for method in [HTTPRequest.Method.get, .head] {
            router.on("/v/{asset}/master.m3u8", method: method) { request, context in
                try await self.handle(.master, request, context) {
                    try await self.serveFile(request, client: Self.client(context), asset: context.parameters.get("asset"), version: nil, relative: "master.m3u8")
                }
            }
            router.on("/v/{asset}/{first}/{second}", method: method) { request, context in
                let asset = context.parameters.get("asset")
                let first = context.parameters.get("first") ?? ""
                let second = context.parameters.get("second") ?? ""
                if first == "keys" {
                    return try await self.handle(.key, request, context) {
                        try await self.serveKey(request, asset: asset, version: nil, keyID: second)
                    }
                }
                if AssetStore.isVersionName(first) {
                    return try await self.handle(Self.route(of: second), request, context) {
                        try await self.serveFile(request, client: Self.client(context), asset: asset, version: first, relative: second)
                    }
                }
                let relative = "\(first)/\(second)"
                return try await self.handle(Self.route(of: relative), request, context) {
                    try await self.serveFile(request, client: Self.client(context), asset: asset, version: nil, relative: relative)
                }
            }
            router.on("/v/{asset}/{first}/{second}/{third}", method: method) { request, context in
                let asset = context.parameters.get("asset")
                let version = context.parameters.get("first") ?? ""
                let first = context.parameters.get("second") ?? ""
                let second = context.parameters.get("third") ?? ""
                if first == "keys" {
                    return try await self.handle(.key, request, context) {
                        try await self.serveKey(request, asset: asset, version: version, keyID: second)
                    }
                }
                let relative = "\(first)/\(second)"
                return try await self.handle(Self.route(of: relative), request, context) {
                    try await self.serveFile(request, client: Self.client(context), asset: asset, version: version, relative: relative)
                }
            }
        }
        // CORS preflight for every playback URL.
        for path in ["/v/{asset}/master.m3u8", "/v/{asset}/{first}/{second}", "/v/{asset}/{first}/{second}/{third}"] {
            router.on(RouterPath(path), method: .options) { request, context in
                try await self.handle(.other, request, context) { self.preflight(request) }
            }
        }
    }

    /// Who is asking, for read-ahead: the client's address.
    static func client<Context: RequestContext>(_ context: Context) -> String {
        (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress ?? "local"
    }

    static func route(of relative: String) -> OriginMetrics.Route {
        if relative == "master.m3u8" { return .master }
        return relative.hasSuffix(".m3u8") ? .playlist : .segment
    }

    /// Rate limit, CORS and metrics around one playback request.
    private func handle<Context: RequestContext>(
        _ route: OriginMetrics.Route, _ request: Request, _ context: Context, _ body: () async throws -> Response
    ) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        var response: Response
        if let limited = rateLimited((context as? any RemoteAddressRequestContext)?.remoteAddress) {
            response = limited.response
        } else {
            do {
                response = try await body()
            } catch {
                logger.error("playback request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                response = Self.plain(.internalServerError, "the origin could not read this object\n")
                response.headers[.cacheControl] = "no-store"
            }
        }
        finish(route, &response.headers, status: response.status, request: request.head, started: started)
        return response
    }

    /// A 429 when the client is over its rate, nil when it may go on.
    func rateLimited(_ address: SocketAddress?) -> PlaybackResponse? {
        guard let limiter, let wait = limiter.admit(address) else { return nil }
        return tooManyRequests(wait)
    }

    /// ``rateLimited(_:)`` for a connection's ``PlaybackClient``.
    func rateLimited(_ client: PlaybackClient) -> PlaybackResponse? {
        guard let limiter, let wait = limiter.admit(client: client.limiterKey) else { return nil }
        return tooManyRequests(wait)
    }

    private func tooManyRequests(_ wait: Double) -> PlaybackResponse {
        metrics.rateLimited.increment()
        var response = PlaybackResponse.plain(.tooManyRequests, "too many requests; retry later\n")
        response.headers[.retryAfter] = String(max(1, Int(wait.rounded(.up))))
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// Who is on a connection, worked out once when it opens: the address read-ahead tracks, and
    /// the key rate limits count under (nil: exempt).
    func client(of address: SocketAddress?) -> PlaybackClient {
        PlaybackClient(
            address: address?.ipAddress ?? "local",
            limiterKey: limiter.flatMap { RateLimiter.client(address, includeLoopback: $0.options.includeLoopback) }
        )
    }

    /// What every playback response gets last: CORS headers, and its count, time and bytes.
    func finish(
        _ route: OriginMetrics.Route, _ headers: inout HTTPFields, status: HTTPResponse.Status, request: HTTPRequest, started: UInt64,
        bodyBytes: Int? = nil
    ) {
        applyCORS(to: &headers, request.headerFields)
        let bodyBytes = request.method == .head ? 0 : (bodyBytes ?? headers[.contentLength].flatMap { Int($0) } ?? 0)
        metrics.request(route, status: status.code, nanoseconds: DispatchTime.now().uptimeNanoseconds &- started, bodyBytes: bodyBytes)
    }

    // MARK: - Files

    private func serveFile(_ request: Request, client: String, asset rawAsset: String?, version versionName: String?, relative: String) async throws -> Response {
        guard let rawAsset, let asset = try? AssetID(rawAsset), StorePath.isSafeRelative(relative),
              let type = MediaType.of(relative)
        else { return Self.notFound }
        let resolved = try await directory.resolve(asset, version: versionName)
        guard let version = resolved else { return Self.notFound }
        // Entry playlists (reached without a version) name the version in their URIs.
        let rewritten = versionName == nil && type == .playlist
        guard let object = try await object(version, relative, type: type, rewritten: rewritten) else { return Self.notFound }
        if type == .transportStream { warm(after: version, relative, client: client) }
        if type == .playlist, let gate, let token = request.uri.queryParameters.get("token"), !token.isEmpty {
            let policy: AccessPolicy?
            do { policy = try await gate.policies.policy(of: asset.rawValue) } catch { return Self.gateUnavailable }
            if policy != nil {
                guard PlaybackToken.isWellFormed(token) else { return Self.malformedToken }
                return tailored(object, type: type, token: String(token), request: request)
            }
        }

        return fileResponse(object, type: type, versioned: versionName != nil, request: request.head).response
    }

    /// The answer for a file L1 (or a load) produced: headers a CDN can act on, 304, gzip, ranges.
    func fileResponse(_ object: CachedObject, type: MediaType, versioned: Bool, request: HTTPRequest) -> PlaybackResponse {
        let fields = request.headerFields
        let useGzip = object.gzipped != nil && fields[.range] == nil && HTTPSemantics.acceptsGzip(fields[.acceptEncoding])
        let eTag = useGzip ? object.gzipETag : object.eTag
        var headers = Self.validatorHeaders(type: type, cacheControl: cacheControl(versioned: versioned), lastModified: object.lastModifiedText, eTag: eTag)

        if HTTPSemantics.notModified(
            ifNoneMatch: fields[.ifNoneMatch], ifModifiedSince: fields[.ifModifiedSince], eTag: eTag,
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
    private func tailored(_ object: CachedObject, type: MediaType, token: String, request: Request) -> Response {
        let body = PlaylistRewriter.appendingQuery(to: object.body, "token=" + PlaylistRewriter.queryValue(token))
        var headers = HTTPFields()
        headers[.contentType] = type.contentType
        headers[.cacheControl] = "private, no-store"
        headers[.contentLength] = String(body.readableBytes)
        return Response(status: .ok, headers: headers, body: request.method == .head ? .init() : .init(byteBuffer: body))
    }

    static var gateUnavailable: Response {
        PlaybackGate.refusal(.serviceUnavailable, reason: "policy_unavailable", "the asset's access policy cannot be read now; try again")
    }

    /// The object from L1, else loaded once (L2, then the store) and kept in L1. nil: no such file.
    private func object(
        _ version: PublishedVersion, _ relative: String, type: MediaType, rewritten: Bool, readAhead: Bool = false
    ) async throws -> CachedObject? {
        let name = Self.objectName(version, relative)
        let key = Self.cacheKey(name, rewritten: rewritten)
        if !readAhead, let cached = cache.get(key) {
            counted(l1Hit: true)
            return cached
        }
        if !readAhead { counted(l1Hit: false) }
        do {
            return try await flights.value(for: key, counted: !readAhead) {
                let body: ObjectBytes
                if rewritten {
                    guard let original = try await self.object(version, relative, type: type, rewritten: false) else { throw StoredFile.Missing() }
                    let folder = relative.split(separator: "/").dropLast().joined(separator: "/")
                    body = ObjectBytes(copied: PlaylistRewriter.rewrite(original.body, directory: folder, version: version.version))
                } else {
                    guard let loaded = try await self.load(name, version: version, relative: relative) else { throw StoredFile.Missing() }
                    body = loaded
                }
                let object = CachedObject(
                    body: body, type: type, version: version.version, relative: relative, entry: rewritten, cacheControl: self.cacheControl(versioned:)
                )
                self.cache.put(key, object, cost: object.cost)
                return object
            }
        } catch is StoredFile.Missing {
            return nil
        }
    }

    static func objectName(_ version: PublishedVersion, _ relative: String) -> String {
        "\(version.asset.rawValue)/\(version.version)/\(relative)"
    }

    /// L1's key for the object `name` (``objectName(_:_:)``): an entry playlist, rewritten to name
    /// its version, is kept apart from the version's own file.
    static func cacheKey(_ name: String, rewritten: Bool) -> String {
        rewritten ? name + "~entry" : name
    }

    func counted(l1Hit: Bool) {
        if l1Hit {
            counters.withLockedValue { $0.l1Hits += 1 }
            metrics.l1Hit.increment()
        } else {
            metrics.l1Miss.increment()
        }
    }

    /// One file's bytes from L2, else from the store (then offered to L2 in the background).
    private func load(_ name: String, version: PublishedVersion, relative: String) async throws -> ObjectBytes? {
        if let shared {
            if let hit = await shared.get(name) {
                counters.withLockedValue { $0.l2Hits += 1 }
                metrics.l2Hit.increment()
                return hit
            }
            metrics.l2Miss.increment()
        }
        guard let path = version.path(of: relative), let stored = try await read(path) else { return nil }
        if let shared { Task { await shared.put(name, stored.buffer) } }
        return stored
    }

    /// Reads a file of a published version on the thread pool; nil when it does not exist.
    private func read(_ path: String) async throws -> ObjectBytes? {
        do {
            let stored = try await threadPool.runIfActive { try StoredFile(path: path, readBody: true) }
            counters.withLockedValue { $0.storeReads += 1 }
            metrics.storeReads.increment()
            return stored.bytes
        } catch is StoredFile.Missing {
            return nil
        }
    }

    // MARK: - Read-ahead

    /// One client playing one rendition of one version (read-ahead follows each).
    struct PlayingStream: Hashable {
        let client: String
        let asset: String
        let version: String
        let folder: String
    }

    /// A numbered segment's place in its rendition (`540p/00042.ts`: folder `540p`, number 42,
    /// written with 5 digits); nil for any other name.
    struct NumberedSegment {
        let folder: String
        let number: Int
        let digits: Int

        init?(_ relative: String) {
            // On the UTF-8 view: the names are ASCII.
            let bytes = relative.utf8
            guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return nil }
            let file = bytes[bytes.index(after: slash)...]
            guard file.count > 3, file.suffix(3).elementsEqual(".ts".utf8) else { return nil }
            let digits = file.dropLast(3)
            guard digits.count <= 18 else { return nil }
            var number = 0
            for byte in digits {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                number = number * 10 + Int(byte - UInt8(ascii: "0"))
            }
            folder = String(Substring(bytes[..<slash]))
            self.number = number
            self.digits = digits.count
        }
    }

    /// At most this many read-aheads run at once, so a burst of viewers cannot flood the store.
    static let maximumWarming = 4

    /// A client that asks for segment k right after segment k-1 of the same rendition is playing
    /// on: segments k+1 … k+n are read into L1 (and L2) in the background, so it finds them in
    /// memory. Random access (seeking, a crawler, a mix of many viewers behind one address) reads
    /// nothing ahead. Segment names are numbered (`00042.ts`).
    func warm(after version: PublishedVersion, _ relative: String, client: String) {
        guard options.warmSegments > 0, let segment = NumberedSegment(relative) else { return }
        warm(after: version, segment, client: client)
    }

    /// ``warm(after:_:client:)`` for a segment whose name was taken apart already.
    func warm(after version: PublishedVersion, _ segment: NumberedSegment, client: String) {
        guard options.warmSegments > 0 else { return }
        let (folder, number, digits) = (segment.folder, segment.number, segment.digits)
        let stream = PlayingStream(client: client, asset: version.asset.rawValue, version: version.version, folder: folder)
        let sequential = lastSegments.withLockedValue { last -> Bool in
            if last.count >= 100_000 { last.removeAll() }
            return last.updateValue(number, forKey: stream) == number - 1
        }
        guard sequential else { return }
        for step in 1...options.warmSegments {
            var next = String(number + step)
            if next.count < digits { next = String(repeating: "0", count: digits - next.count) + next }
            let nextRelative = "\(folder)/\(next).ts"
            let key = "\(version.asset.rawValue)/\(version.version)/\(nextRelative)"
            if cache.contains(key) { continue }
            let admitted = warming.withLockedValue { running -> Bool in
                guard running < Self.maximumWarming else { return false }
                running += 1
                return true
            }
            guard admitted else { return }
            Task {
                defer { warming.withLockedValue { $0 -= 1 } }
                if (try? await object(version, nextRelative, type: .transportStream, rewritten: false, readAhead: true)) != nil {
                    counters.withLockedValue { $0.warmed += 1 }
                    metrics.warmed.increment()
                }
            }
        }
    }

    // MARK: - Keys

    private func serveKey(_ request: Request, asset rawAsset: String?, version versionName: String?, keyID: String) async throws -> Response {
        guard let rawAsset, let asset = try? AssetID(rawAsset), Self.isKeyID(keyID) else { return Self.notFound }
        let resolved = try await directory.resolve(asset, version: versionName)
        guard let version = resolved, let path = version.path(of: "keys/\(keyID).key") else { return Self.notFound }
        if let gate {
            let policy: AccessPolicy?
            do { policy = try await gate.policies.policy(of: asset.rawValue) } catch { return Self.gateUnavailable }
            if let policy, let refusal = await gate.authorize(request, asset: asset.rawValue, policy: policy) { return refusal }
        } else if let policies, let refusal = await refuseWithoutGate(asset, policies) {
            return refusal
        }
        let cacheKey = Self.keyCacheKey(version, keyID)
        let key: [UInt8]
        if let known = keys.withLockedValue({ $0[cacheKey] }) {
            key = known
        } else {
            let stored: StoredFile
            do {
                stored = try await threadPool.runIfActive { try StoredFile(path: path, readBody: true) }
            } catch is StoredFile.Missing {
                return Self.notFound
            }
            do {
                key = try unwrapKey(asset, keyID, Array(buffer: stored.body ?? ByteBuffer()))
            } catch {
                // The reason names the key id and the master key id, never key bytes.
                logger.error("key unwrap failed", metadata: ["asset": "\(asset)", "key": "\(keyID)", "error": "\(error)"])
                var response = Self.plain(.internalServerError, "key \(keyID) is not available\n")
                response.headers[.cacheControl] = "no-store"
                return response
            }
            keys.withLockedValue { keys in
                if keys.count >= 10_000 { keys.removeAll() }
                keys[cacheKey] = key
            }
        }
        return Self.keyResponse(key, method: request.method).response
    }

    static func keyResponse(_ key: [UInt8], method: HTTPRequest.Method) -> PlaybackResponse {
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.contentLength] = String(key.count)
        // Keys must never sit in a shared cache or on a player's disk.
        headers[.cacheControl] = "no-store, private"
        return PlaybackResponse(status: .ok, headers: headers, body: method == .head ? nil : ByteBuffer(bytes: key))
    }

    /// Where ``keys`` holds a version's unwrapped key.
    static func keyCacheKey(_ version: PublishedVersion, _ keyID: String) -> String {
        "\(version.version)/\(keyID)"
    }

    static func isKeyID(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
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

    private func applyCORS(to headers: inout HTTPFields, _ fields: HTTPFields) {
        guard let allowed = allowedOrigin(fields) else {
            if everyAnswerVariesByOrigin { headers[.vary] = Self.varying(headers[.vary], "Origin") }
            return
        }
        headers[.accessControlAllowOrigin] = allowed
        headers[.accessControlExposeHeaders] = "Content-Length, Content-Range, ETag, Accept-Ranges, Retry-After"
        if allowed != "*" { headers[.vary] = Self.varying(headers[.vary], "Origin") }
    }

    private func preflight(_ request: Request) -> Response {
        var headers = HTTPFields()
        headers[.allow] = "GET, HEAD, OPTIONS"
        if allowedOrigin(request.headers) != nil {
            headers[.accessControlAllowMethods] = "GET, HEAD, OPTIONS"
            headers[.accessControlAllowHeaders] = "Range, Authorization, If-None-Match, If-Modified-Since"
            headers[.accessControlMaxAge] = "86400"
        }
        return Response(status: .noContent, headers: headers)
    }

    private static func varying(_ existing: String?, _ name: String) -> String {
        guard let existing, !existing.isEmpty else { return name }
        return existing + ", " + name
    }

    // MARK: - Helpers

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        PlaybackResponse.plain(status, text).response
    }

    static var notFound: Response { plain(.notFound, "not found\n") }
}

/// A playback answer whose body is already in memory: what both the router and the event-loop
/// fast path (``PlaybackFastPath``) send.
struct PlaybackResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    /// nil: no body (HEAD, 304).
    var body: ByteBuffer?
    /// Given only to ``ByteFastPath``: the status line and fields already encoded (`headers` is
    /// then empty; ``HTTPHeadEncoding``).
    var encodedHead: ByteBuffer? = nil
    /// The body lies in an L1 object's page-mapped memory, whose pages ``ByteFastPath`` may lend
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
}

/// One object as L1 keeps it: the bytes, and what the responses need, computed once.
public struct CachedObject: Sendable {
    let body: ByteBuffer
    /// The body's pages may be lent to the kernel (``ObjectBytes``).
    let lendsBody: Bool
    /// Playlists also keep their gzip form.
    let gzipped: ByteBuffer?
    let eTag: String
    let gzipETag: String
    /// Seconds since 1970: the version's publish time.
    let lastModified: Int
    let lastModifiedText: String
    /// `Content-Length` of the whole body.
    let sizeText: String
    /// The encoded head of the plain 200 answer for the whole object, at a versioned URL and at a
    /// version-less one (they differ in `Cache-Control`).
    let wholeHeads: (versioned: ByteBuffer, unversioned: ByteBuffer)

    init(body bytes: ObjectBytes, type: MediaType, version: String, relative: String, entry: Bool, cacheControl: (_ versioned: Bool) -> String) {
        let body = bytes.buffer
        self.body = body
        lendsBody = bytes.lendable
        gzipped = type == .playlist ? Gzip.compress(body.readableBytesView).map { ByteBuffer(bytes: $0) } : nil
        // A version never changes, so (version, name) identifies the bytes.
        let tag = "\(version)/\(relative)\(entry ? "~entry" : "")"
        eTag = "\"\(tag)\""
        gzipETag = "\"\(tag)+gzip\""
        lastModified = HTTPSemantics.publishTime(ofVersion: version) ?? 0
        lastModifiedText = HTTPSemantics.httpDate(lastModified)
        sizeText = String(body.readableBytes)
        wholeHeads = (
            OriginRoutes.wholeHead(type: type, cacheControl: cacheControl(true), lastModified: lastModifiedText, eTag: eTag, size: sizeText),
            OriginRoutes.wholeHead(type: type, cacheControl: cacheControl(false), lastModified: lastModifiedText, eTag: eTag, size: sizeText)
        )
    }

    /// What the object costs L1: its bytes and a little bookkeeping.
    var cost: Int { body.readableBytes + (gzipped?.readableBytes ?? 0) + wholeHeads.versioned.readableBytes + wholeHeads.unversioned.readableBytes + 256 }
}

/// What the origin serves, by file name.
enum MediaType {
    case playlist, transportStream

    static func of(_ relative: String) -> MediaType? {
        if relative.hasSuffix(".m3u8") { return .playlist }
        if relative.hasSuffix(".ts") { return .transportStream }
        return nil
    }

    var contentType: String {
        switch self {
        case .playlist: "application/vnd.apple.mpegurl"
        case .transportStream: "video/mp2t"
        }
    }
}

/// A file read whole from a published version, on a thread-pool thread.
struct StoredFile: Sendable {
    struct Missing: Error {}

    let size: Int
    /// nil when the body was not asked for.
    let bytes: ObjectBytes?
    var body: ByteBuffer? { bytes?.buffer }

    init(path: String, readBody: Bool) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT || errno == ENOTDIR || errno == EISDIR { throw Missing() }
            throw StoreError("\(path): cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw Missing() }
        let size = Int(info.st_size)
        self.size = size
        guard readBody else {
            bytes = nil
            return
        }
        let read = PageMappedMemory.make(size: size) { target in
            var total = 0
            while total < size {
                let count = Glibc.read(descriptor, target.baseAddress! + total, size - total)
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
                total += count
            }
            return total
        }
        guard read.buffer.readableBytes == size else { throw StoreError("\(path): short read (\(read.buffer.readableBytes) of \(size) bytes)") }
        bytes = read
    }
}
