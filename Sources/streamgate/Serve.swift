import ArgumentParser
import CLinux
import Console
import Foundation
import Hummingbird
import Jobs
import Logging
import Metrics
import Origin
import Store
import Vault
import Redis

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve published assets (playlists, encrypted segments, keys) and, with --redis, the job API.",
        discussion: "API keys: --api-key-file FILE (one per line) or STREAMGATE_API_KEYS (comma-separated).\n\n" + unitsHelp
    )

    @OptionGroup(title: "Store") var store: StoreOptions

    @Option(help: ArgumentHelp("A second store holding a copy of the assets (another region's), read when the first fails.", valueName: "folder|s3-url"))
    var fallbackStore: String?

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port: Int = 8080

    @Option(help: "A file holding the master key (base64 or 32 raw bytes); else STREAMGATE_MASTER_KEY.")
    var masterKeyFile: String?

    @Option(help: "Redis URL: enables the job API (/v1/…); redis://host:port/db or unix:///path.")
    var redis: String?

    @Option(help: "The hash tag every queue key shares.")
    var prefix: String = "sg"

    @OptionGroup(title: "Redis durability") var redisWait: RedisWaitOptions

    @Option(help: "A file with the accepted API keys, one per line.")
    var apiKeyFile: String?

    @Option(help: "A folder whose files jobs may name as their source (repeatable); uploads are always allowed.")
    var sourceRoot: [String] = []

    @Option(help: ArgumentHelp("The largest upload accepted.", valueName: "size"))
    var maxUploadBytes = ByteCount(8 << 30)

    @Option(help: ArgumentHelp("How long a resumable (tus) upload waits for its next bytes before it expires and its parts are removed.", valueName: "duration"))
    var uploadExpiry = DurationValue(seconds: 24 * 3600)

    @OptionGroup var cache: OriginCacheOptions

    @OptionGroup(title: "Connections") var connections: ConnectionOptions

    @OptionGroup(title: "Webhooks") var webhooks: WebhookOptions

    @OptionGroup(title: "NFT gating") var gating: GateCommandOptions

    @OptionGroup(title: "Viewer analytics") var analytics: AnalyticsOptions

    @Option(help: "With tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set): the share of playback requests that miss the in-process cache to trace, 0…1; API requests are always traced.")
    var tracePlayback: Double = 0.01

    @Flag(inversion: .prefixedNo, help: "Serve the web console at /console/ (signing in needs the job API) and the viewer's page at /watch/{asset}.")
    var console = true

    @Option(help: ArgumentHelp("The deployment's Prometheus, whose firing alerts GET /v1/alerts and the console show.", valueName: "url"))
    var prometheusURL: String?

    func run() async throws {
        guard (0...1).contains(tracePlayback) else { throw ValidationError("--trace-playback must be between 0 and 1") }
        try await TraceExport.run(service: "streamgate-server", playbackRatio: tracePlayback) { try await serve() }
    }

    /// The store, with its copy behind it when one is given.
    private func storage() throws -> any AssetStorage {
        let primary = try store.storage(creating: false)
        guard let fallbackStore else { return primary }
        var copy = store
        copy.store = fallbackStore
        let secondary = try copy.storage(creating: false)
        let failovers = Counter(label: "streamgate_origin_store_failovers_total")
        let logger = Logger(label: "streamgate.serve")
        return FailoverStorage(primary: primary, secondary: secondary) { why in
            failovers.increment()
            logger.warning("the store failed; answering from its copy", metadata: ["why": "\(why)", "copy": "\(fallbackStore)"])
        }
    }

    private func serve() async throws {
        guard uploadExpiry.nanoseconds >= 1_000_000_000 else { throw ValidationError("--upload-expiry must be 1s or more") }
        if let url = prometheusURL, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ValidationError("--prometheus-url must be an http:// or https:// URL, got '\(url)'")
        }
        var gating = self.gating
        // Loopback clients are real clients here: for sign-ins as for playback.
        if cache.rateLimitLoopback { gating.signInLimits.authRateLimitLoopback = true }
        let server = try ServerSetup(
            storage: try storage(), masterKeyFile: masterKeyFile, redis: redis, prefix: prefix, apiKeyFile: apiKeyFile,
            sourceRoots: sourceRoot, maxUploadBytes: maxUploadBytes.bytes, uploadExpiry: .nanoseconds(Int64(uploadExpiry.nanoseconds)),
            origin: try cache.originOptions(),
            shared: try cache.sharedOptions(), gating: gating.enabled ? gating : nil, webhookPolicy: try webhooks.policy(),
            connections: try connections.limits(),
            replicaWait: redisWait.replicaWait, analytics: analytics, console: console,
            alerts: prometheusURL.map(PrometheusAlerts.init(baseURL:))
        )
        let metrics = server.api != nil ? server.queue.map { queue in Task { await QueueMetrics.run(queue: queue) } } : nil
        defer { metrics?.cancel() }
        try await server.run(host: host, port: port)
    }
}

/// How the origin caches and limits: `serve`'s options, shared with `dev`.
struct OriginCacheOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The in-process cache (L1) budget for playlists and segments; 0 turns it off.", valueName: "size"))
    var l1Bytes = ByteCount(256 << 20)

    @Option(help: ArgumentHelp("The shared Redis cache (L2) budget (with --redis); 0 turns it off.", valueName: "size"))
    var l2Bytes = ByteCount(1 << 30)

    @Option(help: ArgumentHelp("The largest object L2 keeps.", valueName: "size"))
    var l2MaxObjectBytes = ByteCount(8 << 20)

    @Option(help: ArgumentHelp("How long L2 keeps an object, in whole seconds.", valueName: "duration"))
    var l2TTL = DurationValue(seconds: 3600)

    @Option(help: ArgumentHelp(
        "max-age of the version-less entry playlists, in whole seconds (everything else is versioned and immutable).",
        valueName: "duration"
    ))
    var entryMaxAge = DurationValue(seconds: 60)

    @Option(help: "Segments read ahead after each one served (0: none).")
    var warmSegments: Int = 3

    @Option(help: "An origin web players may load from (repeatable); '*' for any, 'none' to turn CORS off.")
    var corsOrigin: [String] = ["*"]

    @Option(help: "Requests a second each client may make (token bucket); 0 turns rate limits off.")
    var rateLimit: Double = 100

    @Option(help: "Requests a client may make at once before the rate applies.")
    var rateBurst: Double = 400

    @Flag(help: "Rate-limit loopback clients too, playback and sign-in (they are exempt by default).")
    var rateLimitLoopback = false

    @Flag(inversion: .prefixedNo, help: "Answer L1 hits on the event loop that read them; --no-fast-path sends every request through the router (same answers, more CPU).")
    var fastPath = true


    func originOptions() throws -> OriginOptions {
        // Cache-Control's max-age is whole seconds.
        guard let entryMaxAge = entryMaxAge.wholeSeconds else {
            throw ValidationError("--entry-max-age must be whole seconds, got \(entryMaxAge)")
        }
        guard (0...32).contains(warmSegments) else { throw ValidationError("--warm-segments must be between 0 and 32") }
        guard rateLimit >= 0, rateBurst >= 1 else { throw ValidationError("--rate-limit must be 0 or more and --rate-burst at least 1") }
        return OriginOptions(
            l1Bytes: l1Bytes.bytes, entryMaxAge: entryMaxAge, warmSegments: warmSegments,
            corsOrigins: corsOrigin == ["none"] ? [] : corsOrigin,
            rateLimit: rateLimit > 0 ? RateLimiter.Options(rate: rateLimit, burst: rateBurst, includeLoopback: rateLimitLoopback) : nil,
            fastPath: fastPath
        )
    }

    func sharedOptions() throws -> SharedCache.Options? {
        guard l2Bytes.bytes > 0 else { return nil }
        // SharedCache keeps its TTL in whole seconds.
        guard let ttl = l2TTL.wholeSeconds else { throw ValidationError("--l2-ttl must be whole seconds, got \(l2TTL)") }
        guard l2MaxObjectBytes.bytes > 0, ttl > 0 else { throw ValidationError("--l2-max-object-bytes and --l2-ttl must be positive") }
        return SharedCache.Options(budgetBytes: l2Bytes.bytes, maxObjectBytes: l2MaxObjectBytes.bytes, ttlSeconds: ttl)
    }
}

/// What each connection and client may hold: `serve`'s options, shared with `dev`.
struct ConnectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "How long a connection may sit idle (no byte either way, no answer awaited) before it is closed.", valueName: "duration"
    ))
    var idleTimeout = DurationValue(seconds: 60)

    @Option(help: ArgumentHelp(
        "How long a request head may take to arrive, from its first byte (or from the connection's opening).", valueName: "duration"
    ))
    var headerTimeout = DurationValue(seconds: 10)

    @Option(help: "Connections one client (an IPv4 address, an IPv6 /64) may hold at once; 0: no cap (behind a CDN, raise it).")
    var maxConnectionsPerClient: Int = 256

    @Option(help: "Connections the server holds at once (more wait to be accepted); 0: the descriptor limit less a reserve.")
    var maxConnections: Int = 0

    func limits() throws -> ConnectionLimits {
        guard idleTimeout.nanoseconds > 0, headerTimeout.nanoseconds > 0 else { throw ValidationError("--idle-timeout and --header-timeout must be positive") }
        guard maxConnectionsPerClient >= 0, maxConnections >= 0 else {
            throw ValidationError("--max-connections-per-client and --max-connections must be 0 or more")
        }
        return ConnectionLimits(
            idleTimeout: .nanoseconds(Int64(idleTimeout.nanoseconds)), headerTimeout: .nanoseconds(Int64(headerTimeout.nanoseconds)),
            perClient: maxConnectionsPerClient, total: maxConnections
        )
    }
}

/// Everything `serve` (and `dev`) puts together: the store, the keyring, Redis (queue, L2 and
/// change announcements) and the routes.
struct ServerSetup {
    let assets: any AssetStorage
    let keyring: Keyring
    let redisURL: RedisURL?
    let queue: JobQueue?
    let api: JobAPI?
    let logger: Logger
    let origin: OriginRoutes
    let gate: GateRuntime?
    /// Viewer analytics' writer, when on.
    let analytics: AnalyticsFlusher?
    /// Deadlines and caps of the HTTP server's connections.
    let connections: ConnectionLimits
    /// The console's pages, when served.
    let pages: [any ServerRoutes]

    init(
        storage: any AssetStorage, masterKeyFile: String?, redis: String?, prefix: String, apiKeyFile: String?,
        sourceRoots: [String], maxUploadBytes: Int, uploadExpiry: Duration = .seconds(24 * 3600), origin options: OriginOptions = OriginOptions(),
        shared sharedOptions: SharedCache.Options? = SharedCache.Options(), gating: GateCommandOptions? = nil,
        apiKeys extraKeys: [String] = [], webhookPolicy: OutboundAddressPolicy = .publicOnly,
        connections: ConnectionLimits = ConnectionLimits(),
        replicaWait: ReplicaWait = ReplicaWait(), analytics analyticsOptions: AnalyticsOptions? = nil, console: Bool = true,
        alerts: PrometheusAlerts? = nil
    ) throws {
        self.connections = connections
        pages = console ? [ConsoleRoutes()] : []
        var logger = Logger(label: "streamgate.serve")
        logger.logLevel = .info
        self.logger = logger
        do {
            keyring = try Keyring.load(keyFile: masterKeyFile)
        } catch {
            throw CommandFailure(error)
        }
        assets = storage
        var queue: JobQueue?
        var api: JobAPI?
        var url: RedisURL?
        var gate: GateRuntime?
        if gating != nil, redis == nil {
            throw CommandFailure(message: "NFT gating (--siwe-domain) needs --redis: nonces, revocations and policies live there", code: 78)
        }
        if let redis {
            do { url = try RedisURL(redis) } catch { throw CommandFailure(message: "\(error)", code: 78) }
            let keys = try Self.apiKeys(file: apiKeyFile) + extraKeys
            let client = JobQueue(redis: replicaWait.client(url: url!, connections: 8), keys: Keyspace(prefix: prefix), callbackPolicy: webhookPolicy)
            queue = client
            if let gating {
                gate = try GateRuntime(options: gating, queue: client, logger: logger)
            } else {
                logger.notice("no NFT gating (--siwe-domain): the keys of assets with a policy are refused (503), not served")
            }
            if keys.isEmpty {
                logger.warning("no API keys (--api-key-file or STREAMGATE_API_KEYS): the job API (/v1) is off; Redis serves L2 and change announcements")
            } else {
                api = JobAPI(
                    configuration: .init(
                        apiKeys: keys, sourceRoots: sourceRoots.map(StorePath.absolute),
                        uploadsDirectory: assets.uploads, maxUploadBytes: maxUploadBytes, uploadLifetime: uploadExpiry
                    ),
                    queue: client, keyring: keyring, logger: logger, store: assets, policies: gate?.gate.policies,
                    // A bucket store keeps its sealed uploads in the bucket, not on this machine.
                    uploads: (assets as? any SealedUploadStorage)?.sealedUploads,
                    browserSessions: console ? BrowserSessions(masterKey: keyring.current) : nil, alerts: alerts
                )
            }
        }
        self.redisURL = url
        self.gate = gate
        self.queue = queue
        self.api = api
        let keyring = self.keyring
        let shared = queue.flatMap { queue in
            sharedOptions.map { SharedCache(redis: queue.redis, keys: queue.keys, options: $0, logger: logger) }
        }
        let analytics = try analyticsOptions?.flusher(queue: queue.map { ($0.redis, $0.keys) }, store: assets, logger: logger)
        self.analytics = analytics
        self.origin = OriginRoutes(
            store: assets,
            unwrapKey: { asset, keyID, stored in
                let wrapped = try WrappedKey(serialized: stored)
                guard wrapped.keyID == keyID else {
                    throw VaultError("keys/\(keyID).key of \(asset) holds key \(wrapped.keyID)")
                }
                return try keyring.unwrap(wrapped, context: asset.rawValue).bytes
            },
            logger: logger, options: options, shared: shared, gate: gate?.gate,
            // Without a gate, policies are still read: a gated asset's key must not be handed out.
            policies: queue.map { PolicyStore(redis: $0.redis, keys: $0.keys) }, analytics: analytics?.analytics
        )
    }

    static func apiKeys(file: String?) throws -> [String] {
        var keys = (ProcessInfo.processInfo.environment["STREAMGATE_API_KEYS"] ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CommandFailure(message: "\(file): cannot read the API key file", code: 78)
            }
            keys += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        let usable = keys.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        if let short = usable.first(where: { $0.utf8.count < 16 }) {
            throw CommandFailure(message: "an API key of \(short.utf8.count) characters is too short (16 at least)", code: 78)
        }
        return usable
    }

    func application(host: String, port: Int) -> OriginApplication {
        buildServerApplication(
            configuration: OriginConfiguration(host: host, port: port, connections: connections), origin: origin, api: api,
            health: HealthRoutes(store: assets, queue: queue, metrics: Telemetry.render, logger: logger), pages: pages, logger: logger
        )
    }

    /// Serves until cancelled (or, with `handlingSignals`, SIGTERM/SIGINT), following asset changes
    /// on Redis meanwhile.
    func run(host: String, port: Int, handlingSignals: Bool = true) async throws {
        let origin = self.origin
        let invalidation = queue.map { queue in
            OriginInvalidation(
                url: redisURL!, channels: [queue.keys.assetChanges, queue.keys.tokenRevocations], logger: logger,
                onMessage: { channel, message in
                    if channel == queue.keys.tokenRevocations {
                        origin.gate?.revocations.announced(message)
                    } else {
                        origin.assetChanged(message)
                    }
                },
                onStatus: { listening in
                    origin.announcements(listening: listening)
                    if let gate = origin.gate { Task { await gate.revocations.listening(listening) } }
                }
            )
        }
        // L1's segments have mappings of their own (PageMappedMemory); the segment-sized buffers
        // that pass through on the way (L2's replies and writes) are allocated with mmap too, so a
        // freed one goes back to the system at once. glibc's default raises this threshold as large
        // blocks are freed, and that churn then fragments the heap far beyond L1's budget.
        _ = clinux_set_mmap_threshold(128 * 1024)
        // Every connection is a descriptor: take the hard limit, not the 1,024 kept for select().
        let descriptors = ConnectionLimits.raiseDescriptorLimit()
        logger.info("connections", metadata: [
            "descriptors": "\(descriptors)", "max": "\(connections.effectiveTotal)", "per_client": "\(connections.perClient)",
        ])
        invalidation?.start()
        let followers = (gate?.followers ?? []).map { follower in Task { await follower.run() } }
        await analytics?.prepare()
        let analyticsWriter = analytics.map { flusher in Task { await flusher.run() } }
        let application = application(host: host, port: port)
        var failure: (any Error)?
        do {
            if handlingSignals { try await application.runService() } else { try await application.run() }
        } catch {
            failure = error
        }
        // The last tallies go out before the server is gone.
        analyticsWriter?.cancel()
        await analyticsWriter?.value
        followers.forEach { $0.cancel() }
        for follower in followers { await follower.value }
        for rpc in gate?.rpcs ?? [] { try? await rpc.shutdown() }
        await invalidation?.stop()
        if let failure { throw failure }
    }
}
