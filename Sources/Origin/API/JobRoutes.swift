import Foundation
import Hummingbird
import Jobs
import Metrics
import NIOCore
import Store
import Gate
import Traces

extension JobAPI {
    func registerJobRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.post("/v1/jobs") { request, _ in try await self.authorized(request) { try await self.createJob(request) } }
        router.get("/v1/jobs/{id}") { request, context in
            try await self.authorized(request) { try await self.showJob(context.parameters.get("id") ?? "") }
        }
        router.delete("/v1/jobs/{id}") { request, context in
            try await self.authorized(request) { try await self.cancelJob(context.parameters.get("id") ?? "") }
        }
        router.get("/v1/queue") { request, _ in
            try await self.authorized(request) { try await Self.json(.ok, try await self.queue.stats()) }
        }
        router.get("/v1/jobs") { request, _ in
            try await self.authorized(request) { try await self.listJobs(request.uri.queryParameters) }
        }
        router.post("/v1/jobs/{id}/retry") { request, context in
            try await self.authorized(request) { try await self.retryJob(context.parameters.get("id") ?? "") }
        }
        router.get("/v1/dead") { request, _ in
            try await self.authorized(request) { try await self.listDeadLetters() }
        }
    }

    /// `GET /v1/jobs?limit=N&state=S`: the newest jobs first (50 by default, 500 at most), of one
    /// state when asked.
    private func listJobs(_ query: Parameters) async throws -> Response {
        guard let limit = query["limit"].map({ Int(String($0)) }) ?? 50, (1...500).contains(limit) else {
            return Self.error(.badRequest, "'limit' must be 1…500", field: "limit")
        }
        var state: JobState?
        if let text = query["state"] {
            guard let known = JobState(rawValue: String(text)) else { return Self.error(.badRequest, "'state' names no job state", field: "state") }
            state = known
        }
        // A state filter looks further back, so a page of failures is not empty behind successes.
        let records = try await queue.recentJobs(limit: state == nil ? limit : min(1000, limit * 10))
        return try Self.json(.ok, ["jobs": Array(records.filter { state == nil || $0.state == state }.prefix(limit))])
    }

    private func retryJob(_ id: String) async throws -> Response {
        let outcome: Result<JobQueue.Enqueued, JobQueue.RetryRefusal>
        do {
            outcome = try await queue.retry(id)
        } catch let error as JobError {
            return Self.error(.badRequest, "job \(id) cannot be enqueued again: \(error.description)", field: error.field)
        }
        switch outcome {
        case .success(let enqueued):
            logger.info("job retried as a new job", metadata: ["job": "\(id)", "new_job": "\(enqueued.jobID)"])
            return try Self.json(.accepted, Accepted(jobID: enqueued.jobID, assetID: enqueued.assetID, statusURL: "/v1/jobs/\(enqueued.jobID)"))
        case .failure(.missing): return Self.error(.notFound, "no job \(id)", field: "id")
        case .failure(.notFinished(let state)):
            return Self.error(.conflict, "job \(id) is \(state.rawValue): only a failed, dead or cancelled job is retried", field: "id")
        case .failure(.chunk): return Self.error(.conflict, "job \(id) is a chunk of a split: retry its parent", field: "id")
        case .failure(.uploadRemoved):
            return Self.error(.conflict, "job \(id)'s upload was removed when it ended: upload the file again", field: "id")
        }
    }

    struct DeadLetter: Encodable {
        var id: String
        var job: String?
        var reason: String?
    }

    private func listDeadLetters() async throws -> Response {
        let letters = try await queue.deadLetters(limit: 50).map { DeadLetter(id: $0.id, job: $0.fields["job"], reason: $0.fields["reason"]) }
        return try Self.json(.ok, ["dead": letters])
    }

    // MARK: - Jobs

    /// The fields `POST /v1/jobs` accepts.
    static let jobFields: Set<String> = [
        "source", "profile", "asset_id", "idempotency_key", "priority", "callback_url", "max_attempts", "timeout_s", "poster_time",
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

    func enqueue(_ spec: JobSpec, upload: (id: String, bytes: Int)? = nil) async throws -> Response {
        let enqueued: JobQueue.Enqueued
        do {
            enqueued = try await submit(spec, source: upload == nil ? "api" : "upload")
        } catch let error as JobError {
            return Self.error(.badRequest, error.description, field: error.field)
        }
        let answer = Accepted(
            jobID: enqueued.jobID, assetID: enqueued.assetID, statusURL: "/v1/jobs/\(enqueued.jobID)",
            uploadID: upload?.id, bytes: upload?.bytes
        )
        return try Self.json(enqueued.created ? .accepted : .ok, answer)
    }

    /// Enqueues a job (every route's one way onto the queue) and counts it by where it came from.
    /// Traced, the job carries the enqueue span's context, which its attempts continue.
    func submit(_ spec: JobSpec, source: String) async throws -> JobQueue.Enqueued {
        try await Traces.span("enqueue", ofKind: .producer) { span in
            var spec = spec
            spec.trace = span == nil ? nil : TraceContext.current()
            let enqueued = try await queue.enqueue(spec)
            span?.attributes["streamgate.job.id"] = enqueued.jobID
            if let asset = enqueued.assetID { span?.attributes["streamgate.asset.id"] = asset }
            if enqueued.created { Counter(label: "streamgate_jobs_enqueued_total", dimensions: [("source", source)]).increment() }
            return enqueued
        }
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
        if result == .cancelled, let source = try await queue.job(id)?.spec?.sealedUploadToRemove {
            _ = try? await uploads.removeSource(source)
        }
        switch result {
        case .missing: return Self.error(.notFound, "no job \(id)", field: "id")
        case .finished:
            let state = try await queue.job(id)?.state.rawValue ?? "finished"
            return Self.error(.conflict, "job \(id) already ended (\(state))", field: "id")
        case let result: return try Self.json(.accepted, ["job_id": id, "status": result.rawValue])
        }
    }
}
