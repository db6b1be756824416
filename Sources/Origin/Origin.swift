import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Redis
import Store
import Gate

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
    /// Answer what memory can answer from the socket's bytes, in front of the HTTP decoder, and
    /// lend large L1 bodies' pages to the socket (``PlaybackFastPath``); off, every request goes
    /// through the router. The answers are the same either way.
    public var fastPath: Bool

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

/// Playback: everything under `/v/`, answered by ``answer(_:mode:progress:)``.
///
/// - `GET|HEAD /v/{asset}/master.m3u8` and `/v/{asset}/{rendition}/index.m3u8`: the entry
///   playlists of the published version, their URIs rewritten to name that version
///   (``PlaylistRewriter``); short-lived, with an ETag that changes on republish.
/// - `GET|HEAD /v/{asset}/{version}/…`: playlists and segments of one version, immutable.
/// - `GET|HEAD /v/{asset}/{rendition}/{segment}`: a segment of the published version.
/// - `GET|HEAD /v/{asset}[/{version}]/keys/{key_id}`: the content key, unwrapped; never cached,
///   and for an asset with a policy only to a viewer the gate admits.
///
/// Objects come from L1 (``ByteCache``), then L2 (``SharedCache``, when configured), then the
/// store, with one load per object however many requests miss at once (``SingleFlight``). Every
/// URL is taken apart by one grammar (``PlaybackTarget``) before any file is touched, so `..`,
/// encoded dots, absolute paths and NUL bytes are simply not found. Segments are served exactly as stored:
/// encrypted.
public struct OriginRoutes: Sendable {
    let store: any AssetStorage
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
    /// Playlists of growing versions, kept apart from L1 and never in L2.
    let growing = GrowingPlaylists()
    let metrics: OriginMetrics
    let counters = NIOLockedValueBox(Counters())
    let warming = NIOLockedValueBox(0)
    /// Viewer analytics, when on (``PlaybackAnalytics``).
    public let analytics: PlaybackAnalytics?
    /// The last segment number each client asked for, per rendition: tells playing on from seeking.
    let lastSegments = NIOLockedValueBox<[PlayingStream: Int]>([:])

    /// What the origin did, for tests (`/metrics` has the same, by level).
    public struct Counters: Sendable, Equatable {
        public var l1Hits = 0
        public var l2Hits = 0
        public var storeReads = 0
        public var coalesced = 0
        public var warmed = 0
        /// Requests answered from the socket's bytes, without the router (``PlaybackFastPath``).
        public var fastPath = 0
        /// Of those, the ones whose body went to the socket by lending its pages (``PageLender``),
        /// and how many body bytes went that way (the rest of a body the socket did not take at
        /// once is copied through NIO).
        public var lent = 0
        public var lentBytes = 0
    }

    public init(
        store: any AssetStorage, unwrapKey: @escaping KeyUnwrapper, logger: Logger, threadPool: NIOThreadPool = .singleton,
        options: OriginOptions = OriginOptions(), shared: SharedCache? = nil, gate: PlaybackGate? = nil, policies: PolicyStore? = nil,
        analytics: PlaybackAnalytics? = nil
    ) {
        self.gate = gate
        self.analytics = analytics
        self.policies = gate?.policies ?? policies
        self.store = store
        self.unwrapKey = unwrapKey
        self.logger = logger
        self.threadPool = threadPool
        self.options = options
        entryCacheControl = "public, max-age=\(options.entryMaxAge)"
        self.shared = shared
        directory = AssetDirectory(store: store)
        limiter = options.rateLimit.map(RateLimiter.init(options:))
        let metrics = OriginMetrics()
        self.metrics = metrics
        flights = SingleFlight(onJoin: { metrics.coalesced.increment() })
        // Segments run to a few MB; about 500 kB an object sizes the frequency sketch.
        cache = ByteCache(capacity: options.l1Bytes, expectedEntries: max(64, options.l1Bytes / 500_000))
    }

    /// - Parameter cacheBytes: the L1 budget (0 turns it off).
    public init(
        store: any AssetStorage, unwrapKey: @escaping KeyUnwrapper, logger: Logger, threadPool: NIOThreadPool = .singleton,
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

    /// An asset was republished, shown while it grows, or deleted: forget its versions and drop
    /// its objects from L1. `<asset>/playlists` says only that a growing version's playlists
    /// changed: just those are dropped.
    public func assetChanged(_ message: String) {
        if message.hasSuffix(Keyspace.playlistsGrew) {
            growing.removeAll(prefix: String(message.dropLast(Keyspace.playlistsGrew.count)) + "/")
            return
        }
        directory.forget(message)
        policies?.forget(message)
        let prefix = message + "/"
        growing.removeAll(prefix: prefix)
        cache.removeAll { $0.hasPrefix(prefix) }
    }

    /// Whether changes are announced (the Redis channel is up). Without announcements the origin
    /// re-reads which version is published every second; with them, every 30 s as a safety net.
    public func announcements(listening: Bool) {
        directory.setFreshness(seconds: listening ? 30 : 1)
        directory.forgetAll()
        policies?.announcements(listening: listening)
    }

    /// Who is on a connection, worked out once when it opens (or per request on the router): the
    /// address read-ahead tracks, and the key rate limits count under (nil: exempt).
    func client(of address: SocketAddress?) -> PlaybackClient {
        PlaybackClient(
            address: address?.ipAddress ?? "local",
            limiterKey: limiter.flatMap { RateLimiter.client(address, includeLoopback: $0.options.includeLoopback) }
        )
    }
}

/// A connection's client, as playback sees it (``OriginRoutes/client(of:)``).
struct PlaybackClient {
    /// The IP address (read-ahead follows each client's playing).
    var address: String
    /// What rate limits count this client under; nil: exempt (loopback, or no limits).
    var limiterKey: ClientKey?
}
