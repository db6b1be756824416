import Foundation
import Store
import Vault

/// The job queue on Redis Streams: enqueue, inspect, cancel; and the worker side (fetch, start,
/// renew, progress, finish, reclaim, promote retries).
///
/// Delivery is at least once. A worker holds a job through its stream entry's pending state and a
/// lease token in the job's record; it renews both while it works, so a long job is never
/// reclaimed from a live worker, and a dead worker's job is reclaimed (XAUTOCLAIM) once its entry
/// has been idle for longer than the lease.
public final class JobQueue: Sendable {
    public let redis: RedisClient
    public let keys: QueueKeys
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
        redis: RedisClient, keys: QueueKeys = QueueKeys(), eventsMaxLength: Int = 100_000,
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

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    // MARK: - Scripts

    /// Runs a script by SHA1, loading it when the server does not know it (first use, restart).
    func eval(_ script: RedisScript, keys scriptKeys: [String], arguments: [String]) async throws(RedisError) -> RedisValue {
        let argv = [String(scriptKeys.count)] + scriptKeys + arguments
        do {
            return try await redis.send(["EVALSHA", script.sha] + argv)
        } catch let error where error.serverCode == "NOSCRIPT" {
            return try await redis.send(["EVAL", script.source] + argv)
        }
    }

    /// Runs one script many times in one round trip.
    func evalMany(_ script: RedisScript, calls: [(keys: [String], arguments: [String])]) async throws(RedisError) -> [RedisValue] {
        guard !calls.isEmpty else { return [] }
        let commands = calls.map { ["EVALSHA", script.sha, String($0.keys.count)] + $0.keys + $0.arguments }
        let replies = try await redis.pipeline(commands)
        if replies.contains(where: { if case .error(let message) = $0 { message.hasPrefix("NOSCRIPT") } else { false } }) {
            _ = try await redis.send(["SCRIPT", "LOAD", script.source])
            return try await redis.pipeline(commands)
        }
        return replies
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
        var spec = spec
        if spec.id == nil { spec.id = JobID.random() }
        if spec.kind == .transcode, spec.assetID == nil { spec.assetID = AssetID.random().rawValue }
        try spec.validate(callbackPolicy: callbackPolicy)
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
            ]
        )
        guard let values = reply.array, values.count == 2, let created = values[0].int, let jobID = values[1].text else {
            throw RedisError.unexpectedReply(command: "enqueue", reply: "\(reply)")
        }
        if created == 1 { return Enqueued(jobID: jobID, assetID: spec.assetID, created: true) }
        let existing = try await job(jobID)
        return Enqueued(jobID: jobID, assetID: existing?.assetID, created: false)
    }

    /// Enqueues many no-op jobs in pipelined batches (for measuring the queue). Returns their ids.
    public func enqueueNoops(count: Int, batch: Int = 500) async throws(RedisError) -> [String] {
        var ids: [String] = []
        ids.reserveCapacity(count)
        var remaining = count
        while remaining > 0 {
            let size = min(batch, remaining)
            remaining -= size
            var calls: [(keys: [String], arguments: [String])] = []
            for _ in 0..<size {
                let id = JobID.random()
                ids.append(id)
                let spec = JobSpec(id: id, kind: .noop).json()
                calls.append((
                    [keys.job(id), keys.stream(.normal), keys.index, keys.idempotency("-"), keys.events],
                    [id, spec, "normal", String(Self.now()), "3", "", "0", "0", String(eventsMaxLength), String(indexMaxLength)]
                ))
            }
            for reply in try await evalMany(Scripts.enqueue, calls: calls) {
                if case .error(let message) = reply { throw RedisError.server(message) }
            }
        }
        return ids
    }

    /// A job's record, or nil when there is none (never existed, or expired after retention).
    public func job(_ id: String) async throws(RedisError) -> JobRecord? {
        guard JobID.isValid(id) else { return nil }
        let reply = try await redis.send(["HGETALL", keys.job(id)])
        return JobRecord(id: id, fields: reply.fieldMap)
    }

    /// The most recent jobs, newest first.
    public func recentJobs(limit: Int = 20) async throws(RedisError) -> [JobRecord] {
        let ids = try await redis.send(["ZREVRANGE", keys.index, "0", String(max(0, limit - 1))]).array?.compactMap(\.text) ?? []
        guard !ids.isEmpty else { return [] }
        let replies = try await redis.pipeline(ids.map { ["HGETALL", keys.job($0)] })
        return zip(ids, replies).compactMap { JobRecord(id: $0, fields: $1.fieldMap) }
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

    /// Depth, lag, pending and oldest age per priority; delayed retries; dead letters; live workers.
    public func stats(workerTimeoutSeconds: Double = 15) async throws(RedisError) -> QueueStats {
        var priorities: [String: QueueStats.PriorityStats] = [:]
        let now = Self.now()
        for priority in JobPriority.allCases {
            let stream = keys.stream(priority)
            let length = Int(try await redis.send(["XLEN", stream]).int ?? 0)
            // Until a worker creates the group, every entry is waiting.
            var lag = length
            var pending = 0
            var lastDelivered = "0-0"
            for group in (try? await redis.send(["XINFO", "GROUPS", stream]).array) ?? [] {
                let fields = group.fieldMap
                guard fields["name"] == keys.group else { continue }
                pending = Int(fields["pending"] ?? "") ?? 0
                lag = Int(fields["lag"] ?? "") ?? max(0, length - pending)
                lastDelivered = fields["last-delivered-id"] ?? "0-0"
            }
            var oldest: Double?
            if lag > 0 {
                let next = try await redis.send(["XRANGE", stream, "(" + lastDelivered, "+", "COUNT", "1"])
                if let entry = next.array?.first?.array?.first?.text, let millis = Int64(entry.split(separator: "-")[0]) {
                    oldest = max(0, Double(now - millis) / 1000)
                }
            }
            priorities[priority.rawValue] = .init(length: length, lag: lag, pending: pending, oldestWaitingSeconds: oldest)
        }
        let delayed = Int(try await redis.send(["ZCARD", keys.delayed]).int ?? 0)
        let dead = Int(try await redis.send(["XLEN", keys.dead]).int ?? 0)
        let workers = Int(try await redis.send([
            "ZCOUNT", keys.workers, String(now - Int64(workerTimeoutSeconds * 1000)), "+inf",
        ]).int ?? 0)
        let totals = try await redis.send(["HGETALL", keys.stats]).fieldMap.compactMapValues { Int($0) }
        return QueueStats(priorities: priorities, delayed: delayed, dead: dead, workers: workers, totals: totals)
    }

    /// The newest dead letters, newest first: (entry id, fields).
    public func deadLetters(limit: Int = 20) async throws(RedisError) -> [(id: String, fields: [String: String])] {
        let reply = try await redis.send(["XREVRANGE", keys.dead, "+", "-", "COUNT", String(limit)])
        return (reply.array ?? []).compactMap { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].text else { return nil }
            return (id, parts[1].fieldMap)
        }
    }

    /// Events after `after` (an events stream id; `$` for only new ones), waiting up to `block` seconds.
    /// Use a client of its own: this blocks a connection.
    public func events(after: String, block: Double, count: Int = 100) async throws(RedisError) -> [(id: String, fields: [String: String])] {
        let events = keys.events
        let reply = try await redis.withConnection { connection throws(RedisError) in
            try connection.withReplyTimeout(block + 5) { () throws(RedisError) -> RedisValue in
                try connection.send(["XREAD", "COUNT", String(count), "BLOCK", String(Int(block * 1000)), "STREAMS", events, after])
            }
        }
        guard let streams = reply.array, let entries = streams.first?.array?.last?.array else { return [] }
        return entries.compactMap { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].text else { return nil }
            return (id, parts[1].fieldMap)
        }
    }

    // MARK: - Worker side

    /// New entries for this consumer, high priority first, waiting up to `block` seconds when there
    /// are none. Use a client of its own: a blocking read holds a connection.
    public func fetch(consumer: String, count: Int, block: Double) async throws(RedisError) -> [Delivery] {
        let keys = self.keys
        return try await redis.withConnection { connection throws(RedisError) in
            var deliveries: [Delivery] = []
            // Non-blocking, in priority order, so `high` is always drained first.
            for priority in JobPriority.readOrder where deliveries.count < count {
                let reply = try connection.send([
                    "XREADGROUP", "GROUP", keys.group, consumer, "COUNT", String(count - deliveries.count),
                    "STREAMS", keys.stream(priority), ">",
                ])
                deliveries += Self.parseDeliveries(reply, keys: keys)
            }
            guard deliveries.isEmpty, block > 0 else { return deliveries }
            // Nothing waiting: block on every stream at once for the first arrival.
            let streams = JobPriority.readOrder.map { keys.stream($0) }
            let reply = try connection.withReplyTimeout(block + 5) { () throws(RedisError) -> RedisValue in
                try connection.send(
                    ["XREADGROUP", "GROUP", keys.group, consumer, "COUNT", "1", "BLOCK", String(Int(block * 1000)), "STREAMS"]
                        + streams + streams.map { _ in ">" }
                )
            }
            return Self.parseDeliveries(reply, keys: keys)
        }
    }

    /// Takes over entries whose lease ran out (idle longer than `leaseSeconds`): a dead worker's jobs.
    public func reclaim(consumer: String, leaseSeconds: Double, count: Int = 10) async throws(RedisError) -> [Delivery] {
        var deliveries: [Delivery] = []
        for priority in JobPriority.readOrder {
            let reply = try await redis.send([
                "XAUTOCLAIM", keys.stream(priority), keys.group, consumer, String(Int(leaseSeconds * 1000)), "0-0",
                "COUNT", String(count),
            ])
            guard let parts = reply.array, parts.count >= 2, let entries = parts[1].array else { continue }
            for entry in entries {
                guard let fields = entry.array, fields.count == 2, let id = fields[0].text else { continue }
                deliveries.append(Delivery(priority: priority, stream: keys.stream(priority), entry: id, fields: fields[1].fieldMap))
            }
        }
        return deliveries
    }

    static func parseDeliveries(_ reply: RedisValue, keys: QueueKeys) -> [Delivery] {
        guard let streams = reply.array else { return [] }
        var deliveries: [Delivery] = []
        for stream in streams {
            guard let parts = stream.array, parts.count == 2, let name = parts[0].text, let entries = parts[1].array else { continue }
            let priority = JobPriority.allCases.first { keys.stream($0) == name } ?? .normal
            for entry in entries {
                guard let fields = entry.array, fields.count == 2, let id = fields[0].text else { continue }
                deliveries.append(Delivery(priority: priority, stream: name, entry: id, fields: fields[1].fieldMap))
            }
        }
        return deliveries
    }

    /// Decides, atomically, whether this consumer runs a delivery.
    public func start(_ delivery: Delivery, consumer: String) async throws(RedisError) -> StartDecision {
        try await start([delivery], consumer: consumer)[0]
    }

    /// Decides for several deliveries in one round trip (plus one per entry that is not a job).
    /// With `inline`, no-op jobs are taken and finished in the same step (``StartDecision/ranInline(jobID:attempt:_:)``).
    public func start(_ deliveries: [Delivery], consumer: String, inline: Bool = false) async throws(RedisError) -> [StartDecision] {
        var decisions = [StartDecision?](repeating: nil, count: deliveries.count)
        var calls: [(keys: [String], arguments: [String])] = []
        var prepared: [(index: Int, id: String, spec: JobSpec)] = []
        var inlineCalls: [(keys: [String], arguments: [String])] = []
        var inlinePrepared: [(index: Int, id: String, spec: JobSpec)] = []
        for (index, delivery) in deliveries.enumerated() {
            let spec: JobSpec
            do {
                guard let text = delivery.fields["job"] else { throw JobError.missingField("job") }
                spec = try JobSpec.parse(text)
                // Where its webhooks go is the sender's to judge: a job is not refused for it here.
                try spec.validate()
            } catch {
                let reason = (error as? JobError)?.description ?? "\(error)"
                try await reject(delivery, reason: reason)
                decisions[index] = .rejected(reason)
                continue
            }
            let id = spec.id ?? delivery.entry
            var stored = spec
            stored.id = id
            let arguments = [
                id, delivery.entry, keys.group, consumer, String(Self.now()), stored.json(), delivery.priority.rawValue,
                String(spec.maxAttempts ?? JobSpec.defaultMaxAttempts), String(eventsMaxLength), spec.assetID ?? "",
                String(retentionSeconds), String(indexMaxLength),
            ]
            let scriptKeys = [keys.job(id), delivery.stream, keys.events, keys.dead, keys.index, keys.stats]
            if inline, spec.kind == .noop {
                inlinePrepared.append((index, id, stored))
                inlineCalls.append((scriptKeys + [keys.delayed], arguments))
            } else {
                prepared.append((index, id, stored))
                calls.append((scriptKeys, arguments))
            }
        }
        for ((index, id, stored), reply) in zip(prepared, try await evalMany(Scripts.start, calls: calls)) {
            decisions[index] = try Self.decision(reply, id: id, stored: stored, delivery: deliveries[index])
        }
        for ((index, id, stored), reply) in zip(inlinePrepared, try await evalMany(Scripts.runInline, calls: inlineCalls)) {
            if let values = reply.array, values.first?.text == "done", values.count == 2, let attempt = values[1].int {
                decisions[index] = .ranInline(jobID: id, attempt: Int(attempt), stored)
            } else {
                decisions[index] = try Self.decision(reply, id: id, stored: stored, delivery: deliveries[index])
            }
        }
        return decisions.map { $0! }
    }

    static func decision(_ reply: RedisValue, id: String, stored: JobSpec, delivery: Delivery) throws(RedisError) -> StartDecision {
        if case .error(let message) = reply { throw .server(message) }
        guard let values = reply.array, let word = values.first?.text else {
            throw RedisError.unexpectedReply(command: "start", reply: "\(reply)")
        }
        switch word {
        case "run":
            guard values.count >= 5, let token = values[1].text, let attempt = values[2].int, let specText = values[3].text else {
                throw RedisError.unexpectedReply(command: "start", reply: "\(reply)")
            }
            let running = (try? JobSpec.parse(specText)) ?? stored
            let asset = values[4].text.flatMap { $0.isEmpty ? nil : $0 } ?? running.assetID
            return .run(
                Lease(jobID: id, token: token, stream: delivery.stream, entry: delivery.entry, attempt: Int(attempt), assetID: asset),
                running
            )
        case "dead":
            return .dead(values.count > 1 ? values[1].text ?? "" : "")
        default:
            return .skip(values.count > 1 ? values[1].text ?? "" : "")
        }
    }

    private func reject(_ delivery: Delivery, reason: String) async throws(RedisError) {
        let fields = String(decoding: (try? JSONSerialization.data(withJSONObject: delivery.fields, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
        _ = try await eval(
            Scripts.rejectEntry,
            keys: [delivery.stream, keys.dead, keys.events, keys.stats],
            arguments: [keys.group, delivery.entry, reason, String(Self.now()), fields, String(eventsMaxLength)]
        )
    }

    /// Renews a lease; tells whether it is still held and whether cancellation was asked.
    public func renew(_ lease: Lease, consumer: String) async throws(RedisError) -> LeaseStatus {
        let reply = try await eval(
            Scripts.renew, keys: [keys.job(lease.jobID), lease.stream],
            arguments: [lease.token, keys.group, consumer, lease.entry, String(Self.now())]
        )
        return Self.leaseStatus(reply)
    }

    /// Progress of a running job (at most every 500 ms is plenty); renews the lease as well.
    public func report(_ lease: Lease, consumer: String, progress: JobProgress) async throws(RedisError) -> LeaseStatus {
        func number(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "" }
        let reply = try await eval(
            Scripts.progress, keys: [keys.job(lease.jobID), keys.events, lease.stream],
            arguments: [
                lease.token, String(Self.now()), number(progress.percent), progress.stage, number(progress.fps),
                number(progress.speed), number(progress.etaSeconds), String(eventsMaxLength), lease.jobID,
                keys.group, consumer, lease.entry,
            ]
        )
        return Self.leaseStatus(reply)
    }

    /// Ends an attempt. Returns false when the lease was lost (another worker owns the job now).
    @discardableResult
    public func finish(_ lease: Lease, _ outcome: Outcome) async throws(RedisError) -> Bool {
        try await finish([(lease, outcome)])[0]
    }

    /// Ends several attempts in one round trip; for each, whether it was recorded.
    public func finish(_ endings: [(Lease, Outcome)]) async throws(RedisError) -> [Bool] {
        let replies = try await evalMany(Scripts.finish, calls: endings.map { lease, outcome in
            (
                [keys.job(lease.jobID), lease.stream, keys.events, keys.dead, keys.delayed, keys.stats],
                Self.finishArguments(lease, outcome, keys: keys, eventsMaxLength: eventsMaxLength, retention: retentionSeconds)
            )
        })
        return try replies.map { reply throws(RedisError) in
            if case .error(let message) = reply { throw .server(message) }
            return reply.int == 1
        }
    }

    static func finishArguments(_ lease: Lease, _ outcome: Outcome, keys: QueueKeys, eventsMaxLength: Int, retention: Int) -> [String] {
        var error = ""
        var version = ""
        var retryAt = "0"
        switch outcome {
        case .succeeded(let published): version = published ?? ""
        case .failed(let reason), .dead(let reason): error = reason
        case .retry(let reason, let at), .postpone(let reason, let at):
            error = reason
            retryAt = String(at)
        case .cancelled: error = "cancelled"
        case .release: break
        }
        return [
            lease.token, keys.group, lease.entry, String(now()), outcome.name, error, version, retryAt,
            String(eventsMaxLength), String(retention), lease.jobID, keys.assetChanges,
        ]
    }

    /// Announces that an asset changed (republished or deleted) to every origin subscribed to
    /// ``QueueKeys/assetChanges``; returns how many received it.
    @discardableResult
    public func announceAssetChange(_ asset: String) async throws(RedisError) -> Int {
        Int(try await redis.send(["PUBLISH", keys.assetChanges, asset]).int ?? 0)
    }

    /// Moves retries that are due back to their streams. Returns how many moved.
    @discardableResult
    public func promoteDueRetries(limit: Int = 100) async throws(RedisError) -> Int {
        let due = try await redis.send([
            "ZRANGEBYSCORE", keys.delayed, "-inf", String(Self.now()), "LIMIT", "0", String(limit),
        ]).array?.compactMap(\.text) ?? []
        guard !due.isEmpty else { return 0 }
        let priorities = try await redis.pipeline(due.map { ["HGET", keys.job($0), "priority"] })
        var moved = 0
        for (id, priorityReply) in zip(due, priorities) {
            let priority = priorityReply.text.flatMap(JobPriority.init(rawValue:)) ?? .normal
            let reply = try await eval(
                Scripts.promote, keys: [keys.delayed, keys.job(id), keys.stream(priority), keys.events],
                arguments: [id, String(Self.now()), String(eventsMaxLength)]
            )
            if reply.int == 1 { moved += 1 }
        }
        return moved
    }

    static func leaseStatus(_ reply: RedisValue) -> LeaseStatus {
        switch reply.int {
        case 1: .held
        case 2: .cancelRequested
        default: .lost
        }
    }
}
