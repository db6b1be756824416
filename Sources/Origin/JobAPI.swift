import Foundation
import Hummingbird
import Jobs
import Logging
import Metrics
import NIOCore
import NIOPosix
import Store
import Gate
import Vault
import Redis

/// The job API for an upload service, under `/v1`. Every request needs `Authorization: Bearer <key>`.
///
/// - `POST /v1/jobs` `{source, profile?, asset_id?, idempotency_key?, priority?, callback_url?,
///   max_attempts?, timeout_s?}` → 202 `{job_id, asset_id, status_url}` (200 with the first job when
///   the idempotency key was seen).
/// - `POST /v1/uploads?profile=…&asset_id=…` with the file as the body → the body is sealed
///   (chunked AES-256-GCM) as it arrives, never written in the clear, and a job is enqueued for it.
/// - `GET /v1/jobs/{id}`, `DELETE /v1/jobs/{id}` (cancel), `GET /v1/queue`.
/// - `GET /v1/assets/{id}` (the published version), `DELETE /v1/assets/{id}`: withdraws the asset
///   and announces it, so every origin stops serving it within a second.
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

        public init(
            apiKeys: [String], sourceRoots: [String] = [], uploadsDirectory: String,
            maxUploadBytes: Int = 8 << 30, defaultProfile: String = "default"
        ) {
            self.apiKeys = apiKeys
            self.sourceRoots = sourceRoots
            self.uploadsDirectory = uploadsDirectory
            self.maxUploadBytes = maxUploadBytes
            self.defaultProfile = defaultProfile
        }
    }

    let configuration: Configuration
    let queue: JobQueue
    let keyring: Keyring
    let logger: Logger
    let threadPool: NIOThreadPool
    /// The store assets are published to; nil leaves out the `/v1/assets` routes.
    let store: AssetStore?
    /// Access policies (NFT gating); nil when gating is not configured.
    let policies: PolicyStore?
    private let keyDigests: [[UInt8]]

    public init(
        configuration: Configuration, queue: JobQueue, keyring: Keyring, logger: Logger, store: AssetStore? = nil,
        policies: PolicyStore? = nil, threadPool: NIOThreadPool = .singleton
    ) {
        self.configuration = configuration
        self.store = store
        self.policies = policies
        self.queue = queue
        self.keyring = keyring
        self.logger = logger
        self.threadPool = threadPool
        keyDigests = configuration.apiKeys.map { Digest.sha256(Array($0.utf8)) }
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/v1/jobs") { request, _ in try await self.authorized(request) { try await self.createJob(request) } }
        router.post("/v1/uploads") { request, _ in try await self.authorized(request) { try await self.upload(request) } }
        router.get("/v1/jobs/{id}") { request, context in
            try await self.authorized(request) { try await self.showJob(context.parameters.get("id") ?? "") }
        }
        router.delete("/v1/jobs/{id}") { request, context in
            try await self.authorized(request) { try await self.cancelJob(context.parameters.get("id") ?? "") }
        }
        router.get("/v1/queue") { request, _ in
            try await self.authorized(request) { try await Self.json(.ok, try await self.queue.stats()) }
        }
        if store != nil {
            router.get("/v1/assets/{id}") { request, context in
                try await self.authorized(request) { try await self.showAsset(context.parameters.get("id") ?? "") }
            }
            router.delete("/v1/assets/{id}") { request, context in
                try await self.authorized(request) { try await self.deleteAsset(context.parameters.get("id") ?? "") }
            }
        }
        if policies != nil {
            router.put("/v1/assets/{id}/policy") { request, context in
                try await self.authorized(request) { try await self.putPolicy(request, context.parameters.get("id") ?? "") }
            }
            router.get("/v1/assets/{id}/policy") { request, context in
                try await self.authorized(request) { try await self.showPolicy(context.parameters.get("id") ?? "") }
            }
            router.delete("/v1/assets/{id}/policy") { request, context in
                try await self.authorized(request) { try await self.removePolicy(context.parameters.get("id") ?? "") }
            }
        }
    }

    // MARK: - Authentication

    private func authorized(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            return Self.error(.unauthorized, "an API key is required (Authorization: Bearer <key>)", field: "Authorization")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return Self.error(.unauthorized, "the Authorization header must be 'Bearer <key>'", field: "Authorization")
        }
        let digest = Digest.sha256(Array(parts[1].utf8))
        // Every key is compared, so the time taken does not tell which one (or how much) matched.
        var matched = false
        for known in keyDigests where Digest.constantTimeEqual(known, digest) { matched = true }
        guard matched else { return Self.error(.unauthorized, "unknown API key", field: "Authorization") }
        do {
            return try await body()
        } catch let error as RedisError {
            logger.error("queue unavailable", metadata: ["error": "\(error)"])
            return Self.error(.serviceUnavailable, "the job queue is unavailable")
        }
    }

    // MARK: - Jobs

    /// The fields `POST /v1/jobs` accepts.
    static let jobFields: Set<String> = [
        "source", "profile", "asset_id", "idempotency_key", "priority", "callback_url", "max_attempts", "timeout_s",
    ]

    private func createJob(_ request: Request) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: 64 * 1024)
        } catch {
            return Self.error(.contentTooLarge, "the job description is over 64 KiB")
        }
        var data = Data(buffer: body)
        guard var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            return Self.error(.badRequest, "the body must be a JSON object", field: "body")
        }
        if let unknown = object.keys.sorted().first(where: { !Self.jobFields.contains($0) && $0 != "policy" }) {
            return Self.error(.badRequest, "unknown field '\(unknown)'", field: unknown)
        }
        // The access policy is the asset's, not the job's: it is checked and stored before the
        // job is queued, so the asset is gated from the moment it is published.
        var policy: AccessPolicy?
        if let value = object.removeValue(forKey: "policy") {
            guard policies != nil else { return Self.error(.badRequest, "this server has no NFT gating configured", field: "policy") }
            do {
                policy = try AccessPolicy(json: try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]))
            } catch {
                return Self.error(.badRequest, "\(error)", field: "policy")
            }
            data = try JSONSerialization.data(withJSONObject: object)
        }
        var spec: JobSpec
        do {
            spec = try JobSpec.parse(String(decoding: data, as: UTF8.self))
        } catch {
            return Self.error(.badRequest, error.description, field: error.field)
        }
        spec.id = nil
        spec.kind = .transcode
        if spec.profile == nil { spec.profile = configuration.defaultProfile }
        guard let source = spec.source else { return Self.error(.badRequest, "field 'source' is required", field: "source") }
        switch checkSource(source) {
        case .success(let resolved): spec.source = resolved
        case .failure(let problem): return Self.error(.badRequest, "field 'source': \(problem)", field: "source")
        }
        if let profile = spec.profile, !JobID.isValid(profile) {
            return Self.error(.badRequest, "field 'profile' must name a profile (letters, digits, '-', '_')", field: "profile")
        }
        if let policy, let policies {
            if spec.assetID == nil { spec.assetID = AssetID.random().rawValue }
            do {
                try await policies.setPolicy(policy, of: spec.assetID!)
            } catch {
                return Self.error(.serviceUnavailable, "the policy cannot be stored: \(error)", field: "policy")
            }
        }
        return try await enqueue(spec)
    }

    /// The answer to a job or upload accepted.
    struct Accepted: Encodable {
        var jobID: String
        var assetID: String?
        var statusURL: String
        var uploadID: String?
        var bytes: Int?

        enum CodingKeys: String, CodingKey {
            case jobID = "job_id", assetID = "asset_id", statusURL = "status_url", uploadID = "upload_id", bytes
        }
    }

    private func enqueue(_ spec: JobSpec, upload: (id: String, bytes: Int)? = nil) async throws -> Response {
        let enqueued: JobQueue.Enqueued
        do {
            enqueued = try await queue.enqueue(spec)
        } catch let error as JobError {
            return Self.error(.badRequest, error.description, field: error.field)
        }
        if enqueued.created { Counter(label: "streamgate_jobs_enqueued_total", dimensions: [("source", upload == nil ? "api" : "upload")]).increment() }
        let answer = Accepted(
            jobID: enqueued.jobID, assetID: enqueued.assetID, statusURL: "/v1/jobs/\(enqueued.jobID)",
            uploadID: upload?.id, bytes: upload?.bytes
        )
        return try Self.json(enqueued.created ? .accepted : .ok, answer)
    }

    /// A job may only read files under the configured roots: the API must not become a way to make
    /// workers read (and publish) any file on their hosts.
    /// The source with its links resolved when it is a file under a source root; else why not.
    private func checkSource(_ source: String) -> Result<String, SourceProblem> {
        guard !configuration.sourceRoots.isEmpty else {
            return .failure(SourceProblem("this server accepts uploads only (POST /v1/uploads); no source folders are configured"))
        }
        return SourcePolicy(roots: configuration.sourceRoots).resolve(source)
    }

    private func showJob(_ id: String) async throws -> Response {
        guard let record = try await queue.job(id) else { return Self.error(.notFound, "no job \(id)", field: "id") }
        return try Self.json(.ok, record)
    }

    private func cancelJob(_ id: String) async throws -> Response {
        let result = try await queue.cancel(id)
        // Cancelled before a worker took it: no worker will see it end, so its upload goes here.
        if result == .cancelled, let path = try await queue.job(id)?.spec?.sealedUploadToRemove {
            try? FileManager.default.removeItem(atPath: path)
        }
        switch result {
        case .missing: return Self.error(.notFound, "no job \(id)", field: "id")
        case .finished:
            let state = try await queue.job(id)?.state.rawValue ?? "finished"
            return Self.error(.conflict, "job \(id) already ended (\(state))", field: "id")
        case let result: return try Self.json(.accepted, ["job_id": id, "status": result.rawValue])
        }
    }

    // MARK: - Assets

    private func showAsset(_ id: String) async throws -> Response {
        guard let store, let asset = try? AssetID(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        guard let version = try await threadPool.runIfActive({ try store.publishedVersion(of: asset) }) else {
            return Self.error(.notFound, "no published asset \(id)", field: "id")
        }
        return try Self.json(.ok, ["asset_id": id, "version": version.version, "playback_path": "/v/\(id)/master.m3u8"])
    }

    private func deleteAsset(_ id: String) async throws -> Response {
        guard let store, let asset = try? AssetID(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        guard try await threadPool.runIfActive({ try store.publishedVersion(of: asset) }) != nil else {
            return Self.error(.notFound, "no published asset \(id)", field: "id")
        }
        try await threadPool.runIfActive { try store.unpublish(asset) }
        do {
            try await queue.redis.announceAssetChange(id, in: queue.keys)
        } catch {
            // Origins that miss the announcement notice within a second or half a minute anyway.
            logger.warning("asset withdrawn but not announced", metadata: ["asset": "\(id)", "error": "\(error)"])
        }
        logger.info("asset withdrawn", metadata: ["asset": "\(id)"])
        return Response(status: .noContent)
    }

    // MARK: - Policies

    private func putPolicy(_ request: Request, _ id: String) async throws -> Response {
        guard let policies, AssetID.isValid(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: 64 * 1024) } catch { return Self.error(.contentTooLarge, "the policy is over 64 KiB") }
        let policy: AccessPolicy
        do { policy = try AccessPolicy(json: Array(buffer: body)) } catch { return Self.error(.badRequest, "\(error)", field: "policy") }
        try await policies.setPolicy(policy, of: id)
        logger.info("asset policy set", metadata: ["asset": "\(id)", "policy": "\(policy.policyID)"])
        return try Self.json(.ok, ["asset_id": id, "policy_id": policy.policyID])
    }

    private func showPolicy(_ id: String) async throws -> Response {
        guard let policies, AssetID.isValid(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        guard let policy = try await policies.policy(of: id).value else { return Self.error(.notFound, "asset \(id) has no policy: it is public", field: "id") }
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: policy.canonicalJSON))
        )
    }

    private func removePolicy(_ id: String) async throws -> Response {
        guard let policies, AssetID.isValid(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        try await policies.setPolicy(nil, of: id)
        return Response(status: .noContent)
    }

    // MARK: - Uploads

    /// The query parameters `POST /v1/uploads` accepts.
    static let uploadFields: Set<String> = ["profile", "asset_id", "priority", "callback_url", "idempotency_key", "max_attempts", "keep_source"]

    private func upload(_ request: Request) async throws -> Response {
        var spec = JobSpec(kind: .transcode, profile: configuration.defaultProfile, sourceEncrypted: true)
        for (name, value) in request.uri.queryParameters {
            let field = String(name)
            let text = String(value)
            guard Self.uploadFields.contains(field) else {
                return Self.error(.badRequest, "unknown query parameter '\(field)'", field: field)
            }
            switch field {
            case "profile":
                guard JobID.isValid(text) else { return Self.error(.badRequest, "profile must name a profile", field: field) }
                spec.profile = text
            case "asset_id": spec.assetID = text
            case "priority":
                guard let priority = JobPriority(rawValue: text) else {
                    return Self.error(.badRequest, "priority must be high or normal", field: field)
                }
                spec.priority = priority
            case "callback_url": spec.callbackURL = text
            case "idempotency_key": spec.idempotencyKey = text
            case "max_attempts":
                guard let number = Int(text) else { return Self.error(.badRequest, "max_attempts must be a whole number", field: field) }
                spec.maxAttempts = number
            case "keep_source": spec.keepSource = text == "1" || text == "true"
            default: break
            }
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxUploadBytes {
            return Self.error(.contentTooLarge, "the upload is \(length) bytes; the limit is \(configuration.maxUploadBytes)", field: "body")
        }
        let uploadID = "u" + JobID.random().dropFirst()
        spec.id = nil
        spec.source = configuration.uploadsDirectory + "/\(uploadID).sealed"
        do {
            try spec.validate(callbackPolicy: queue.callbackPolicy)
        } catch {
            return Self.error(.badRequest, error.description, field: error.field)
        }

        let path = spec.source!
        let writer: UploadWriter
        do {
            writer = try await threadPool.runIfActive { [configuration, keyring] in
                try FileManager.default.createDirectory(atPath: configuration.uploadsDirectory, withIntermediateDirectories: true)
                return UploadWriter(try SealedSourceWriter(path: path, keyring: keyring, uploadID: uploadID))
            }
        } catch {
            logger.error("cannot store an upload", metadata: ["error": "\(error)"])
            return Self.error(.internalServerError, "the upload cannot be stored")
        }
        var total = 0
        do {
            for try await buffer in request.body {
                total += buffer.readableBytes
                if total > configuration.maxUploadBytes {
                    await discard(writer)
                    Counter(label: "streamgate_uploads_rejected_total", dimensions: [("reason", "too_large")]).increment()
                    return Self.error(.contentTooLarge, "the upload is over the limit of \(configuration.maxUploadBytes) bytes", field: "body")
                }
                try await threadPool.runIfActive { try writer.append(buffer) }
            }
            guard total > 0 else {
                await discard(writer)
                return Self.error(.badRequest, "the upload is empty", field: "body")
            }
            try await threadPool.runIfActive { try writer.finish() }
        } catch let error as VaultError {
            // The server could not store it: out of space, or another I/O failure.
            await discard(writer)
            logger.error("cannot store an upload", metadata: ["error": "\(error)"])
            if let code = error.systemError, code == ENOSPC || code == EDQUOT {
                return Self.error(HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), "no space left to store the upload")
            }
            return Self.error(.internalServerError, "the upload cannot be stored")
        } catch {
            // The body stopped arriving: the client went away or sent a broken stream.
            await discard(writer)
            logger.warning("upload did not complete", metadata: ["error": "\(error)"])
            return Self.error(.badRequest, "the upload did not complete", field: "body")
        }
        Counter(label: "streamgate_uploads_total").increment()
        Counter(label: "streamgate_upload_bytes_total").increment(by: total)
        do {
            return try await enqueue(spec, upload: (uploadID, total))
        } catch {
            await discard(writer)
            throw error
        }
    }

    private func discard(_ writer: UploadWriter) async {
        _ = try? await threadPool.runIfActive { writer.discard() }
    }

    // MARK: - Answers

    static func json<T: Encodable>(_ status: HTTPResponse.Status, _ value: T) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, field: String? = nil) -> Response {
        var object = ["error": message]
        if let field { object["field"] = field }
        return (try? json(status, object)) ?? Response(status: status)
    }
}

/// A sealed upload being written, used by one request at a time from thread-pool threads.
private final class UploadWriter: @unchecked Sendable {
    private let writer: SealedSourceWriter

    init(_ writer: SealedSourceWriter) { self.writer = writer }

    func append(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { try writer.append($0) }
    }

    func finish() throws { try writer.finish() }
    func discard() { writer.discard() }
}
