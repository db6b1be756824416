import Foundation
import Redis
import Store

/// Which workers a job's attempt ran on, for comparing a new version against the running one.
/// `canary` workers take at most a rollout's share of attempts; `stable` workers take everything.
public enum WorkerTrack: String, Sendable, Codable, CaseIterable {
    case stable, canary
}

/// How much media an attempt transcoded and how long it took: a rollout compares the tracks'
/// speed (media seconds per wall second) with these.
public struct AttemptTiming: Sendable, Equatable {
    public var mediaSeconds: Double
    public var wallSeconds: Double

    public init(mediaSeconds: Double, wallSeconds: Double) {
        self.mediaSeconds = mediaSeconds
        self.wallSeconds = wallSeconds
    }
}

extension Keyspace {
    /// The running rollout: its share, versions and per-track counters (docs/jobs.md).
    public var rollout: String { "\(tag):rollout" }
    /// The last rollout that ended, promoted or aborted.
    public var lastRollout: String { "\(tag):rollout:last" }
}

/// What a canary worker may take now (``JobQueue/takeCanarySlots(wanted:)``).
public struct CanarySlots: Sendable, Equatable {
    public enum State: String, Sendable {
        /// No rollout: the canary works as a stable worker.
        case none
        /// A rollout runs: `count` slots are reserved in `window`.
        case active
        /// The last rollout was aborted: the canary takes nothing until the next one starts.
        case held
    }

    public var state: State
    public var count: Int
    /// The rollout window the slots were reserved in; nil when nothing was reserved.
    public var window: String?

    public init(state: State, count: Int, window: String?) {
        self.state = state
        self.count = count
        self.window = window
    }
}

/// A rollout as Redis holds it: its settings and both tracks' counters since it started.
public struct RolloutRecord: Sendable, Codable, Equatable {
    public var id: String
    public var share: Double
    public var startedAt: Int64?
    public var updatedAt: Int64?
    public var canaryVersion: String?
    public var stableVersion: String?
    public var canary: TrackOutcomes
    public var stable: TrackOutcomes
    /// `promoted` or `aborted`, for a rollout that ended.
    public var ended: String?
    public var endedAt: Int64?

    enum CodingKeys: String, CodingKey {
        case id, share, startedAt = "started_at", updatedAt = "updated_at", canaryVersion = "canary_version"
        case stableVersion = "stable_version", canary, stable, ended, endedAt = "ended_at"
    }

    /// Reads a rollout hash (HGETALL); nil when it is empty.
    public init?(fields: [String: String]) {
        guard let id = fields["id"] else { return nil }
        self.id = id
        share = fields["share"].flatMap(Double.init) ?? 0
        startedAt = fields["started_at"].flatMap { Int64($0) }
        updatedAt = fields["updated_at"].flatMap { Int64($0) }
        canaryVersion = fields["canary_version"].flatMap { $0.isEmpty ? nil : $0 }
        stableVersion = fields["stable_version"].flatMap { $0.isEmpty ? nil : $0 }
        canary = TrackOutcomes(fields: fields, track: .canary)
        stable = TrackOutcomes(fields: fields, track: .stable)
        ended = fields["ended"]
        endedAt = fields["ended_at"].flatMap { Int64($0) }
    }
}

public enum RolloutError: Error, CustomStringConvertible, Equatable {
    case badShare(Double)
    case alreadyRunning(String)
    case notRunning

    public var description: String {
        switch self {
        case .badShare(let share): "the share must be 0…1, got \(share)"
        case .alreadyRunning(let id): "rollout \(id) is already running: change it with `rollout set-share`, or end it with `rollout promote` or `rollout abort`"
        case .notRunning: "no rollout is running (start one with `streamgate rollout start --share 0.1`)"
        }
    }
}

/// Rollouts: canary slots for workers, and the window's start, share and end for operators.
extension JobQueue {
    /// Reserves up to `wanted` slots for a canary worker before it reads the streams (see
    /// ``Scripts/rolloutTake``). Slots it does not start go back with ``giveBackCanarySlots(_:used:)``.
    public func takeCanarySlots(wanted: Int) async throws(RedisError) -> CanarySlots {
        let reply = try await eval(Scripts.rolloutTake, keys: [keys.rollout, keys.lastRollout], arguments: [String(wanted)])
        guard let values = reply.array, values.count == 3, let word = values[0].text, let state = CanarySlots.State(rawValue: word),
              let count = values[2].int else {
            throw RedisError.unexpectedReply(command: "rollout take", reply: "\(reply)")
        }
        let window = values[1].text.flatMap { $0.isEmpty ? nil : $0 }
        return CanarySlots(state: state, count: Int(count), window: state == .active && count > 0 ? window : nil)
    }

    /// Gives back the reserved slots that did not start an attempt.
    public func giveBackCanarySlots(_ slots: CanarySlots, used: Int) async throws(RedisError) {
        guard let window = slots.window, slots.count > used else { return }
        _ = try await eval(Scripts.rolloutGiveBack, keys: [keys.rollout], arguments: [window, String(slots.count - used)])
    }

    /// Starts a rollout: canary workers take `share` (0…1) of the attempts from now on.
    public func startRollout(share: Double, canaryVersion: String? = nil, stableVersion: String? = nil) async throws -> RolloutRecord {
        guard (0...1).contains(share) else { throw RolloutError.badShare(share) }
        let now = Self.now()
        // Unique per window: a late end of an attempt from an earlier window never counts here.
        let id = "\(now)-\(AssetID.randomBase32(count: 6))"
        let reply = try await eval(
            Scripts.rolloutStart, keys: [keys.rollout],
            arguments: [id, Self.shareText(share), String(now), canaryVersion ?? "", stableVersion ?? ""]
        )
        guard let values = reply.array, values.count == 2, let started = values[0].int else {
            throw RedisError.unexpectedReply(command: "rollout start", reply: "\(reply)")
        }
        if started != 1 { throw RolloutError.alreadyRunning(values[1].text ?? "?") }
        guard let record = try await rollout() else { throw RolloutError.notRunning }
        return record
    }

    /// Changes the running rollout's share; returns the previous one.
    @discardableResult
    public func setRolloutShare(_ share: Double) async throws -> Double {
        guard (0...1).contains(share) else { throw RolloutError.badShare(share) }
        let reply = try await eval(Scripts.rolloutSetShare, keys: [keys.rollout], arguments: [Self.shareText(share), String(Self.now())])
        guard let previous = reply.text.flatMap(Double.init) else { throw RolloutError.notRunning }
        return previous
    }

    /// Ends the running rollout as `promoted` or `aborted`; returns it as it ended.
    public func endRollout(promoted: Bool) async throws -> RolloutRecord {
        let reply = try await eval(
            Scripts.rolloutEnd, keys: [keys.rollout, keys.lastRollout], arguments: [promoted ? "promoted" : "aborted", String(Self.now())]
        )
        guard reply.int == 1, let record = try await lastRollout() else { throw RolloutError.notRunning }
        return record
    }

    /// The running rollout, or nil.
    public func rollout() async throws(RedisError) -> RolloutRecord? {
        RolloutRecord(fields: try await redis.send(["HGETALL", keys.rollout]).fieldMap)
    }

    /// The last rollout that ended, or nil.
    public func lastRollout() async throws(RedisError) -> RolloutRecord? {
        RolloutRecord(fields: try await redis.send(["HGETALL", keys.lastRollout]).fieldMap)
    }

    private static func shareText(_ share: Double) -> String { String(format: "%.6g", share) }
}
