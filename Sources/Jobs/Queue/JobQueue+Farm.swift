import Foundation
import Redis

/// A live worker as its heartbeat describes it.
public struct WorkerStatus: Sendable, Codable, Equatable {
    public var id: String
    public var host: String?
    public var state: String
    /// `stable` or `canary` (a worker from before tracks reports none: it is stable).
    public var track: String
    public var jobs: [String]
    public var jobsDone: Int
    /// Milliseconds since 1970.
    public var startedAt: Int64?
    public var heartbeatAt: Int64?

    enum CodingKeys: String, CodingKey {
        case id, host, state, track, jobs, jobsDone = "jobs_done", startedAt = "started_at", heartbeatAt = "heartbeat_at"
    }
}

/// A farm's size: what it was asked to run, and what its supervisor last said it runs (nil when
/// no supervisor has reported within 10 s).
public struct FarmStatus: Sendable, Codable, Equatable {
    public var name: String
    public var desired: Int?
    public var running: Int?
    public var host: String?
    public var restarts: Int?
}

/// The farm's side of the queue: who is working, and how many workers a farm should run.
extension JobQueue {
    /// The most workers one farm runs.
    public static let maximumFarmWorkers = 256

    /// Workers whose heartbeat is younger than `timeoutSeconds`, by id.
    public func liveWorkers(timeoutSeconds: Double = 15) async throws(RedisError) -> [WorkerStatus] {
        let since = Self.now() - Int64(timeoutSeconds * 1000)
        let ids = try await redis.send(["ZRANGEBYSCORE", keys.workers, String(since), "+inf"]).array?.compactMap(\.text) ?? []
        guard !ids.isEmpty else { return [] }
        let replies = try await redis.pipeline(ids.map { ["HGETALL", keys.worker($0)] })
        return zip(ids, replies).compactMap { id, reply in
            let fields = reply.fieldMap
            guard !fields.isEmpty else { return nil }
            return WorkerStatus(
                id: id, host: fields["host"], state: fields["state"] ?? "running", track: fields["track"] ?? "stable",
                jobs: (fields["jobs"] ?? "").split(separator: ",").map(String.init), jobsDone: Int(fields["jobs_done"] ?? "") ?? 0,
                startedAt: fields["started_at"].flatMap { Int64($0) }, heartbeatAt: fields["heartbeat_at"].flatMap { Int64($0) }
            )
        }.sorted { $0.id < $1.id }
    }

    /// Farm `name`'s asked-for and running sizes.
    public func farm(_ name: String) async throws(RedisError) -> FarmStatus {
        let replies = try await redis.pipeline([["GET", keys.desiredWorkers(farm: name)], ["HGETALL", keys.farmStatus(farm: name)]])
        return Self.farmStatus(name, desired: replies[0], status: replies[1])
    }

    private static func farmStatus(_ name: String, desired: RedisValue, status reply: RedisValue) -> FarmStatus {
        let status = reply.fieldMap
        return FarmStatus(
            name: name, desired: desired.text.flatMap { Int($0) }, running: status["running"].flatMap { Int($0) },
            host: status["host"], restarts: status["restarts"].flatMap { Int($0) }
        )
    }

    /// Every farm that has run or been given a size (the first 100 by name), read in one round trip.
    public func farms() async throws(RedisError) -> [FarmStatus] {
        let names = (try await redis.send(["SMEMBERS", keys.farms]).array?.compactMap(\.text) ?? []).filter(JobID.isValid).sorted().prefix(100)
        let replies = try await redis.pipeline(names.flatMap { [["GET", keys.desiredWorkers(farm: $0)], ["HGETALL", keys.farmStatus(farm: $0)]] })
        return names.enumerated().map { index, name in Self.farmStatus(name, desired: replies[2 * index], status: replies[2 * index + 1]) }
    }

    /// Asks farm `name` to run `workers` (its supervisor follows within a second). Returns the size
    /// asked before.
    public func setDesiredWorkers(_ workers: Int, farm name: String) async throws(RedisError) -> Int? {
        let replies = try await redis.pipeline([["GETSET", keys.desiredWorkers(farm: name), String(workers)], ["SADD", keys.farms, name]])
        return replies[0].text.flatMap { Int($0) }
    }

    /// A new job with the spec of finished job `id` (failed, dead or cancelled), its attempts
    /// fresh; or why not.
    public func retry(_ id: String) async throws -> Result<Enqueued, RetryRefusal> {
        guard let record = try await job(id), var spec = record.spec else { return .failure(.missing) }
        guard record.state.isTerminal, record.state != .succeeded else { return .failure(.notFinished(record.state)) }
        guard spec.parent == nil else { return .failure(.chunk) }
        guard spec.sealedUploadToRemove == nil else { return .failure(.uploadRemoved) }
        spec.id = nil
        spec.idempotencyKey = nil
        spec.traceparent = nil
        spec.tracestate = nil
        return .success(try await enqueue(spec))
    }

    public enum RetryRefusal: Error, Sendable, Equatable {
        case missing
        case notFinished(JobState)
        /// A split's chunk is retried by its parent, never alone.
        case chunk
        /// An upload is removed when its job ends (unless `keep_source`): it must be sent again.
        case uploadRemoved
    }
}
