import Foundation
import Redis

/// Reading the queue: job records, the index, depth and lag, dead letters, the events stream.
extension JobQueue {
    /// A job's record, or nil when there is none (never existed, or expired after retention).
    public func job(_ id: String) async throws(RedisError) -> JobRecord? {
        guard JobID.isValid(id) else { return nil }
        let reply = try await redis.send(["HGETALL", keys.job(id)])
        return JobRecord(id: id, fields: reply.fieldMap)
    }

    /// The most recent jobs, newest first.
    public func recentJobs(limit: Int = 20) async throws(RedisError) -> [JobRecord] {
        let ids = try await redis.send(["ZREVRANGE", keys.index, "0", String(max(0, limit - 1))]).array?.compactMap(\.text) ?? []
        return try await jobs(ids)
    }

    /// The records of `ids` that exist, in their order, in one round trip.
    public func jobs(_ ids: [String]) async throws(RedisError) -> [JobRecord] {
        let ids = ids.filter(JobID.isValid)
        guard !ids.isEmpty else { return [] }
        let replies = try await redis.pipeline(ids.map { ["HGETALL", keys.job($0)] })
        return zip(ids, replies).compactMap { JobRecord(id: $0, fields: $1.fieldMap) }
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
}
