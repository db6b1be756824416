import Foundation
import Store
import Vault
import Redis

/// The job queue on Redis Streams: enqueue, inspect, cancel; and the worker side (fetch, start,
/// renew, progress, finish, reclaim, promote retries).
///
/// Delivery is at least once. A worker holds a job through its stream entry's pending state and a
/// lease token in the job's record; it renews both while it works, so a long job is never
/// reclaimed from a live worker, and a dead worker's job is reclaimed (XAUTOCLAIM) once its entry
/// has been idle for longer than the lease.
public final class JobQueue: Sendable {
    public let redis: RedisClient
    public let keys: Keyspace
    /// Entries the events and dead-letter streams keep (about).
    public let eventsMaxLength: Int
    /// Job ids the index (`jobs list`) keeps, newest first.
    public let indexMaxLength: Int
    /// Seconds a finished job's record is kept.
    public let retentionSeconds: Int
    /// Seconds an idempotency key is remembered.
    public let idempotencySeconds: Int
    /// Where a job enqueued here may send webhooks, for an early refusal of a literal address
    /// (the sender judges again, with its own allow-list, once the host is resolved).
    public let callbackPolicy: OutboundAddressPolicy

    public init(
        redis: RedisClient, keys: Keyspace = Keyspace(), eventsMaxLength: Int = 100_000,
        retentionSeconds: Int = 7 * 86_400, idempotencySeconds: Int = 86_400, callbackPolicy: OutboundAddressPolicy = .publicOnly,
        indexMaxLength: Int = 1_000_000
    ) {
        self.indexMaxLength = indexMaxLength
        self.callbackPolicy = callbackPolicy
        self.redis = redis
        self.keys = keys
        self.eventsMaxLength = eventsMaxLength
        self.retentionSeconds = retentionSeconds
        self.idempotencySeconds = idempotencySeconds
    }

    /// Jobs one batch script moves at most: Redis runs nothing else while a script runs.
    static let scriptBatch = 500

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    // MARK: - Scripts

    /// Runs a script by SHA1, loading it when the server does not know it (``RedisClient/eval``).
    /// `durable` (enqueue, finish): acknowledged only once the client's
    /// ``RedisClient/waitReplicas`` replicas have the write, so a failover cannot lose it.
    func eval(_ script: RedisScript, keys scriptKeys: [String], arguments: [String], durable: Bool = false) async throws(RedisError) -> RedisValue {
        try await redis.eval(script, keys: scriptKeys, arguments: arguments.map { Array($0.utf8) }, durable: durable)
    }

    /// Runs one script many times in one round trip (``RedisClient/evalMany``).
    func evalMany(_ script: RedisScript, calls: [(keys: [String], arguments: [String])], durable: Bool = false) async throws(RedisError) -> [RedisValue] {
        try await redis.evalMany(script, calls: calls.map { ($0.keys, $0.arguments.map { Array($0.utf8) }) }, durable: durable)
    }

    /// Creates the consumer group on every priority's stream (idempotent). Reading from id 0, so
    /// entries added before the group existed are delivered too.
    public func ensureGroups() async throws(RedisError) {
        for priority in JobPriority.allCases {
            do {
                try await redis.send(["XGROUP", "CREATE", keys.stream(priority), keys.group, "0", "MKSTREAM"])
            } catch let error where error.serverCode == "BUSYGROUP" {
                continue
            }
        }
    }

    // MARK: - Producer side

    public struct Enqueued: Sendable, Equatable, Codable {
        public var jobID: String
        public var assetID: String?
        /// False when an idempotency key matched an earlier job, which is returned instead.
        public var created: Bool

        enum CodingKeys: String, CodingKey {
            case jobID = "job_id", assetID = "asset_id", created
        }
    }

    /// Validates and enqueues a job; with an idempotency key already seen, returns that job.
    public func enqueue(_ spec: JobSpec) async throws -> Enqueued {
        try await enqueue(prepared: prepared(spec))
    }

    /// `spec` with its id (and a transcode's asset id) filled in, validated for enqueueing.
    private func prepared(_ spec: JobSpec) throws(JobError) -> JobSpec {
        var spec = spec
        guard spec.kind != .chunk else { throw .invalidField("kind", "'chunk' jobs are made by the farm when it splits an upload") }
        if spec.id == nil { spec.id = JobID.random() }
        if spec.kind == .transcode, spec.assetID == nil { spec.assetID = AssetID.random().rawValue }
        try spec.validate(callbackPolicy: callbackPolicy)
        return spec
    }

    /// ``enqueue(_:)`` of a spec that ``prepared(_:)`` made.
    private func enqueue(prepared spec: JobSpec) async throws -> Enqueued {
        let id = spec.id!
        let priority = spec.priority ?? .normal
        let idempotencyKey = spec.idempotencyKey.map { keys.idempotency(Digest.hex(Digest.sha256(Array($0.utf8)))) } ?? keys.idempotency("-")
        let reply = try await eval(
            Scripts.enqueue,
            keys: [keys.job(id), keys.stream(priority), keys.index, idempotencyKey, keys.events],
            arguments: [
                id, spec.json(), priority.rawValue, String(Self.now()), String(spec.maxAttempts ?? JobSpec.defaultMaxAttempts),
                spec.assetID ?? "", spec.idempotencyKey == nil ? "0" : "1", String(idempotencySeconds), String(eventsMaxLength),
                String(indexMaxLength),
            ],
            durable: true
        )
        guard let values = reply.array, values.count == 2, let created = values[0].int, let jobID = values[1].text else {
            throw RedisError.unexpectedReply(command: "enqueue", reply: "\(reply)")
        }
        if created == 1 { return Enqueued(jobID: jobID, assetID: spec.assetID, created: true) }
        let existing = try await job(jobID)
        return Enqueued(jobID: jobID, assetID: existing?.assetID, created: false)
    }

    /// Validates and enqueues many jobs, up to ``scriptBatch`` in one script call (a job with an
    /// idempotency key goes alone, as ``enqueue(_:)``). A job whose id is already taken is not
    /// enqueued again: its answer says `created: false`, as for a known idempotency key. Any job
    /// that does not validate refuses the whole batch before anything is enqueued.
    public func enqueue(batch specs: [JobSpec]) async throws -> [Enqueued] {
        let specs = try specs.map { spec throws(JobError) in try prepared(spec) }
        var answers: [Enqueued] = []
        answers.reserveCapacity(specs.count)
        var start = 0
        while start < specs.count {
            if specs[start].idempotencyKey != nil {
                answers.append(try await enqueue(prepared: specs[start]))
                start += 1
                continue
            }
            var end = start
            while end < specs.count, end - start < Self.scriptBatch, specs[end].idempotencyKey == nil { end += 1 }
            let batch = specs[start..<end]
            var scriptKeys = [keys.index, keys.events]
            var arguments = [String(Self.now()), String(eventsMaxLength), String(indexMaxLength)]
            for spec in batch {
                let priority = spec.priority ?? .normal
                scriptKeys += [keys.job(spec.id!), keys.stream(priority)]
                arguments += [
                    spec.id!, spec.json(), priority.rawValue, String(spec.maxAttempts ?? JobSpec.defaultMaxAttempts), spec.assetID ?? "",
                ]
            }
            let reply = try await eval(Scripts.enqueueBatch, keys: scriptKeys, arguments: arguments, durable: true)
            guard let created = reply.array, created.count == batch.count else {
                throw RedisError.unexpectedReply(command: "enqueue batch", reply: "\(reply)")
            }
            for (spec, created) in zip(batch, created) {
                let asset = created.int == 1 ? spec.assetID : try await job(spec.id!)?.assetID
                answers.append(Enqueued(jobID: spec.id!, assetID: asset, created: created.int == 1))
            }
            start = end
        }
        return answers
    }

    /// Enqueues `count` no-op jobs in batches (for measuring the queue). Returns their ids.
    public func enqueueNoops(count: Int) async throws -> [String] {
        try await enqueue(batch: (0..<count).map { _ in JobSpec(kind: .noop) }).map(\.jobID)
    }

    public enum CancelResult: String, Sendable, Codable {
        /// Nobody was running it: cancelled now.
        case cancelled
        /// Its worker has been asked to stop; it will be cancelled within moments.
        case cancelling
        /// Already finished, or unknown.
        case finished, missing
    }

    /// Cancels a job: queued or waiting to retry → cancelled at once; running → its worker stops it.
    public func cancel(_ id: String) async throws(RedisError) -> CancelResult {
        guard JobID.isValid(id) else { return .missing }
        let reply = try await eval(
            Scripts.cancel,
            keys: [keys.job(id), keys.delayed, keys.events, keys.stream(.high), keys.stream(.normal), keys.stats],
            arguments: [id, String(Self.now()), String(eventsMaxLength), String(retentionSeconds)]
        )
        guard let values = reply.array, values.count == 2, let done = values[0].int, let word = values[1].text else {
            throw RedisError.unexpectedReply(command: "cancel", reply: "\(reply)")
        }
        if done == 1 { return word == "cancelled" ? .cancelled : .cancelling }
        return word == "missing" ? .missing : .finished
    }
}
