import Hummingbird
import Jobs
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Store
import Vault
import Redis

/// The job API for an upload service, under `/v1`. Every request needs `Authorization: Bearer <key>`.
///
/// - `POST /v1/jobs` `{source, profile?, asset_id?, idempotency_key?, priority?, callback_url?,
///   max_attempts?, timeout_s?, poster_time?}` → 202 `{job_id, asset_id, status_url}` (200 with the first job when
///   the idempotency key was seen).
/// - `POST /v1/uploads?profile=…&asset_id=…` with the file as the body → the body is sealed
///   (chunked AES-256-GCM) as it arrives, never written in the clear, into the store's uploads (a
///   bucket's multipart upload, or a folder), and a job is enqueued for it.
/// - Resumable uploads, tus 1.0 (``TusHeaders``): `POST /v1/uploads` with `Tus-Resumable: 1.0.0`,
///   `HEAD`/`PATCH`/`DELETE /v1/uploads/{id}`, `OPTIONS /v1/uploads`.
/// - `GET /v1/jobs/{id}`, `DELETE /v1/jobs/{id}` (cancel), `GET /v1/queue`.
/// - `GET /v1/assets/{id}` (the published version), `DELETE /v1/assets/{id}`: withdraws the asset
///   and announces it, so every origin stops serving it within a second.
/// - Browsers sign in with a key once (`POST /v1/session`) and are then known by a session cookie
///   (``BrowserSessions``); changes from a browser also need its `X-CSRF-Token`.
///
/// A `callback_url` whose host is a literal address must be public or allowed by the queue's
/// `callbackPolicy` (`--webhook-allow`); names are judged by the worker when it sends.
///
/// Errors are JSON `{"error": "…", "field": "…"}`: 400 names the field, 401 without a valid key,
/// 404 for an unknown job, 413 for an upload over the limit (nothing kept).
public struct JobAPI: Sendable {
    public struct Configuration: Sendable {
        /// Accepted API keys. Compared by SHA-256 digest in constant time.
        public var apiKeys: [String]
        /// Sources a job may name: paths under one of these folders (uploads are always allowed).
        public var sourceRoots: [String]
        /// Where uploads are sealed: `<folder>/<upload id>.sealed`.
        public var uploadsDirectory: String
        public var maxUploadBytes: Int
        /// The profile a job gets when it names none.
        public var defaultProfile: String
        /// How long a resumable (tus) upload may wait for its next bytes before it expires and
        /// its stored parts are removed: `Upload-Expires` is this after the last stored bytes.
        public var uploadLifetime: Duration

        public init(
            apiKeys: [String], sourceRoots: [String] = [], uploadsDirectory: String,
            maxUploadBytes: Int = 8 << 30, defaultProfile: String = "default", uploadLifetime: Duration = .seconds(24 * 3600)
        ) {
            self.apiKeys = apiKeys
            self.sourceRoots = sourceRoots
            self.uploadsDirectory = uploadsDirectory
            self.maxUploadBytes = maxUploadBytes
            self.defaultProfile = defaultProfile
            self.uploadLifetime = uploadLifetime
        }
    }

    let configuration: Configuration
    let queue: JobQueue
    let keyring: Keyring
    let logger: Logger
    let threadPool: NIOThreadPool
    /// The store assets are published to; nil leaves out the `/v1/assets` routes.
    let store: (any AssetStorage)?
    /// Access policies (NFT gating); nil when gating is not configured.
    let policies: PolicyStore?
    /// Where uploads are sealed: the store's (a bucket's multipart uploads, or its folder).
    let uploads: any SealedUploadTarget
    /// Resumable uploads' records and locks, in the queue's Redis.
    let sessions: UploadSessions
    /// When the expired-upload sweep last ran on this origin (ms).
    let lastSweep = NIOLockedValueBox<Int64>(0)
    /// Browser sign-in; nil: only `Authorization: Bearer` is accepted.
    let browserSessions: BrowserSessions?
    /// One Redis reader of job events for every live feed on this origin.
    let eventFeed: JobEventFeed
    /// Where `GET /v1/alerts` reads the deployment's alerts; nil: none configured.
    let alerts: PrometheusAlerts?
    let keyDigests: [[UInt8]]

    /// - Parameter uploads: where uploads are sealed; nil: `configuration.uploadsDirectory`, a
    ///   folder (a bucket store passes its ``SealedUploadStorage/sealedUploads``).
    public init(
        configuration: Configuration, queue: JobQueue, keyring: Keyring, logger: Logger, store: (any AssetStorage)? = nil,
        policies: PolicyStore? = nil, uploads: (any SealedUploadTarget)? = nil, browserSessions: BrowserSessions? = nil,
        alerts: PrometheusAlerts? = nil, threadPool: NIOThreadPool = .singleton
    ) {
        self.browserSessions = browserSessions
        self.alerts = alerts
        eventFeed = JobEventFeed(queue: queue, logger: logger)
        self.configuration = configuration
        self.uploads = uploads ?? FolderUploadTarget(folder: configuration.uploadsDirectory, threadPool: threadPool)
        sessions = UploadSessions(redis: queue.redis, keys: queue.keys)
        self.store = store
        self.policies = policies
        self.queue = queue
        self.keyring = keyring
        self.logger = logger
        self.threadPool = threadPool
        keyDigests = configuration.apiKeys.map { Digest.sha256(Array($0.utf8)) }
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        registerJobRoutes(on: router)
        registerFarmRoutes(on: router)
        registerEventRoutes(on: router)
        registerAlertRoutes(on: router)
        if browserSessions != nil { registerSessionRoutes(on: router) }
        registerUploadRoutes(on: router)
        registerTusRoutes(on: router)
        if store != nil { registerAssetRoutes(on: router) }
        if policies != nil { registerPolicyRoutes(on: router) }
    }

    // MARK: - Authentication

    func authorized(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            switch await browserSession(request) {
            case .none:
                return Self.error(.unauthorized, "an API key is required (Authorization: Bearer <key>)", field: "Authorization")
            case .ended(let refusal), .unavailable(let refusal):
                return refusal
            case .live(let cookie, _):
                if ![.get, .head, .options].contains(request.method), browserSessions?.isCSRFToken(request.headers[BrowserSessions.csrfHeader], for: cookie) != true {
                    return Self.error(.forbidden, "a change from a browser needs the session's X-CSRF-Token", field: "X-CSRF-Token")
                }
                return try await answering(body)
            }
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return Self.error(.unauthorized, "the Authorization header must be 'Bearer <key>'", field: "Authorization")
        }
        guard isKnownKey(String(parts[1])) else { return Self.error(.unauthorized, "unknown API key", field: "Authorization") }
        return try await answering(body)
    }

    /// Whether `key` is one of the configured API keys, compared so the time taken does not tell
    /// which one (or how much) matched.
    func isKnownKey(_ key: String) -> Bool {
        let digest = Digest.sha256(Array(key.utf8))
        var matched = false
        for known in keyDigests where Digest.constantTimeEqual(known, digest) { matched = true }
        return matched
    }

    private func answering(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as RedisError {
            logger.error("queue unavailable", metadata: ["error": "\(error)"])
            return Self.error(.serviceUnavailable, "the job queue is unavailable")
        }
    }
}
