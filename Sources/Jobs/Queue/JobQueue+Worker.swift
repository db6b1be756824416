import Foundation
import Redis

/// The worker side of the queue: fetch, reclaim, start, renew, progress, finish, promote retries.
extension JobQueue {
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

    static func parseDeliveries(_ reply: RedisValue, keys: Keyspace) -> [Delivery] {
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
    /// With `inline`, no-op jobs are taken and finished in the same step, a batch of them per
    /// script call (``StartDecision/ranInline(jobID:attempt:_:)``). Each start is counted for the
    /// consumer's `track` in a running rollout, unless it was counted when a canary reserved its
    /// slots in window `reserved` (``takeCanarySlots(wanted:)``).
    public func start(
        _ deliveries: [Delivery], consumer: String, inline: Bool = false, track: WorkerTrack = .stable, reserved: String? = nil
    ) async throws(RedisError) -> [StartDecision] {
        var decisions = [StartDecision?](repeating: nil, count: deliveries.count)
        var calls: [(keys: [String], arguments: [String])] = []
        var prepared: [(index: Int, id: String, spec: JobSpec)] = []
        var inlined: [String: [(index: Int, id: String, spec: JobSpec)]] = [:]
        let now = String(Self.now())
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
            var stored = spec
            stored.id = spec.id ?? delivery.entry
            if inline, spec.kind == .noop {
                inlined[delivery.stream, default: []].append((index, stored.id!, stored))
                continue
            }
            prepared.append((index, stored.id!, stored))
            calls.append((
                [keys.job(stored.id!), delivery.stream, keys.events, keys.dead, keys.index, keys.stats, keys.rollout],
                startArguments(stored, delivery: delivery, consumer: consumer, now: now) + [track.rawValue, reserved ?? ""]
            ))
        }
        for ((index, id, stored), reply) in zip(prepared, try await evalMany(Scripts.start, calls: calls)) {
            decisions[index] = try Self.decision(reply, id: id, stored: stored, delivery: deliveries[index])
        }
        for (stream, jobs) in inlined {
            for batch in stride(from: 0, to: jobs.count, by: Self.scriptBatch).map({ jobs[$0..<min($0 + Self.scriptBatch, jobs.count)] }) {
                var scriptKeys = [stream, keys.events, keys.dead, keys.index, keys.stats, keys.delayed, keys.rollout]
                var arguments = [
                    keys.group, consumer, now, String(eventsMaxLength), String(retentionSeconds), String(indexMaxLength),
                    track.rawValue, reserved ?? "",
                ]
                for (index, id, stored) in batch {
                    scriptKeys.append(keys.job(id))
                    let delivery = deliveries[index]
                    arguments += [
                        id, delivery.entry, stored.json(), delivery.priority.rawValue,
                        String(stored.maxAttempts ?? JobSpec.defaultMaxAttempts), stored.assetID ?? "",
                    ]
                }
                let reply = try await eval(Scripts.runInlineBatch, keys: scriptKeys, arguments: arguments, durable: true)
                guard let replies = reply.array, replies.count == batch.count else {
                    throw RedisError.unexpectedReply(command: "run inline", reply: "\(reply)")
                }
                for ((index, id, stored), reply) in zip(batch, replies) {
                    if let values = reply.array, values.first?.text == "done", values.count == 2, let attempt = values[1].int {
                        decisions[index] = .ranInline(jobID: id, attempt: Int(attempt), stored)
                    } else {
                        decisions[index] = try Self.decision(reply, id: id, stored: stored, delivery: deliveries[index])
                    }
                }
            }
        }
        return decisions.map { $0! }
    }

    /// ``Scripts/start``'s arguments for a delivery.
    private func startArguments(_ stored: JobSpec, delivery: Delivery, consumer: String, now: String) -> [String] {
        [
            stored.id!, delivery.entry, keys.group, consumer, now, stored.json(), delivery.priority.rawValue,
            String(stored.maxAttempts ?? JobSpec.defaultMaxAttempts), String(eventsMaxLength), stored.assetID ?? "",
            String(retentionSeconds), String(indexMaxLength),
        ]
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

    /// The attempt's version is shown while it grows (``AssetStorage``'s `show`): the job records
    /// when and which version, its events say `playable`, and origins hear the asset changed.
    public func playable(_ lease: Lease, consumer: String, version: String) async throws(RedisError) -> LeaseStatus {
        let reply = try await eval(
            Scripts.playable, keys: [keys.job(lease.jobID), keys.events, lease.stream],
            arguments: [
                lease.token, String(Self.now()), version, String(eventsMaxLength), lease.jobID, keys.group, consumer,
                lease.entry, keys.assetChanges,
            ]
        )
        return Self.leaseStatus(reply)
    }

    /// Ends an attempt. Returns false when the lease was lost (another worker owns the job now).
    /// Safe to retry: sent again under the same lease (after a lost answer, or a
    /// ``RedisError/notReplicated(endpoint:replicas:wanted:)``) it answers true and changes nothing.
    /// `timing`, when the attempt transcoded: counted for its track in a running rollout.
    @discardableResult
    public func finish(_ lease: Lease, _ outcome: Outcome, timing: AttemptTiming? = nil) async throws(RedisError) -> Bool {
        try await finish([(lease, outcome)], timings: [timing])[0]
    }

    /// Ends several attempts in one round trip; for each, whether it was recorded. `timings`, when
    /// given, holds one entry per ending.
    public func finish(_ endings: [(Lease, Outcome)], timings: [AttemptTiming?] = []) async throws(RedisError) -> [Bool] {
        let calls = endings.enumerated().map { index, ending in
            let timing = index < timings.count ? timings[index] : nil
            return (
                keys: [keys.job(ending.0.jobID), ending.0.stream, keys.events, keys.dead, keys.delayed, keys.stats, keys.rollout],
                arguments: Self.finishArguments(ending.0, ending.1, keys: keys, eventsMaxLength: eventsMaxLength, retention: retentionSeconds)
                    + (timing.map { [String(format: "%.3f", $0.mediaSeconds), String(format: "%.3f", $0.wallSeconds)] } ?? ["", ""])
            )
        }
        let replies = try await evalMany(Scripts.finish, calls: calls, durable: true)
        return try replies.map { reply throws(RedisError) in
            if case .error(let message) = reply { throw .server(message) }
            return reply.int == 1
        }
    }

    static func finishArguments(_ lease: Lease, _ outcome: Outcome, keys: Keyspace, eventsMaxLength: Int, retention: Int) -> [String] {
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
