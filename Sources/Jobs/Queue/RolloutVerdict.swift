import Foundation

/// One track's attempts in a rollout window, by how they ended.
public struct TrackOutcomes: Sendable, Codable, Equatable {
    public var started = 0
    public var succeeded = 0
    /// Failed for good (bad input, bad profile): the job is not run again.
    public var failed = 0
    /// Failed and retried (a crash, a kill at the time limit, out of memory).
    public var retried = 0
    /// Failed on its last attempt.
    public var dead = 0
    /// Not the attempt's doing (the store failed, the worker was stopped, the job was cancelled).
    public var postponed = 0
    public var released = 0
    public var cancelled = 0
    /// Seconds of media transcoded, and the wall seconds it took, over the `timed` attempts.
    public var mediaSeconds = 0.0
    public var wallSeconds = 0.0
    public var timed = 0

    public init() {}

    /// Reads `<track>:<counter>` fields of a rollout hash.
    public init(fields: [String: String], track: WorkerTrack) {
        func count(_ name: String) -> Int { fields["\(track.rawValue):\(name)"].flatMap { Int($0) } ?? 0 }
        func seconds(_ name: String) -> Double { fields["\(track.rawValue):\(name)"].flatMap(Double.init) ?? 0 }
        started = count("started")
        succeeded = count("succeeded")
        failed = count("failed")
        retried = count("retry")
        dead = count("dead")
        postponed = count("postpone")
        released = count("release")
        cancelled = count("cancelled")
        mediaSeconds = seconds("media_s")
        wallSeconds = seconds("wall_s")
        timed = count("timed")
    }

    /// Attempts that failed, however the job went on.
    public var failures: Int { failed + retried + dead }
    /// Attempts that tell something about the version: succeeded or failed.
    public var judged: Int { succeeded + failures }
    public var failureRatio: Double? { judged > 0 ? Double(failures) / Double(judged) : nil }
    /// Media seconds per wall second over the timed attempts.
    public var speed: Double? { wallSeconds > 0 && mediaSeconds > 0 ? mediaSeconds / wallSeconds : nil }

    enum CodingKeys: String, CodingKey {
        case started, succeeded, failed, retried, dead, postponed, released, cancelled
        case mediaSeconds = "media_s", wallSeconds = "wall_s", timed
    }
}

/// What a rollout must show before its canary is promoted.
public struct RolloutCriteria: Sendable, Codable, Equatable {
    /// Canary attempts that succeeded or failed, at least, before anything but a rollback is said.
    public var minAttempts: Int
    /// How much worse (as a fraction, 0.02 = 2 points) the canary's failure ratio may be than stable's.
    public var maxFailureDelta: Double
    /// The lowest canary speed allowed, as a fraction of stable's.
    public var minSpeedRatio: Double

    public init(minAttempts: Int = 20, maxFailureDelta: Double = 0.02, minSpeedRatio: Double = 0.9) {
        self.minAttempts = minAttempts
        self.maxFailureDelta = maxFailureDelta
        self.minSpeedRatio = minSpeedRatio
    }

    enum CodingKeys: String, CodingKey {
        case minAttempts = "min_attempts", maxFailureDelta = "max_failure_delta", minSpeedRatio = "min_speed_ratio"
    }
}

/// `rollout status`'s answer, with its exit code.
public enum RolloutVerdict: String, Sendable, Codable {
    case promote, rollback, wait

    public var exitCode: Int32 {
        switch self {
        case .promote: 0
        case .rollback: 1
        case .wait: 3
        }
    }
}

/// A verdict and the numbers behind it.
public struct RolloutJudgement: Sendable, Codable, Equatable {
    public var verdict: RolloutVerdict
    /// Why, one sentence each, with the numbers.
    public var reasons: [String]
    /// Canary's failure ratio minus stable's (stable's taken as 0 when it has no attempts yet).
    public var failureDelta: Double?
    /// Canary's speed over stable's, when both transcoded media.
    public var speedRatio: Double?

    enum CodingKeys: String, CodingKey {
        case verdict, reasons, failureDelta = "failure_delta", speedRatio = "speed_ratio"
    }

    /// Compares the canary against stable.
    ///
    /// - `rollback` when the canary's failure ratio exceeds stable's by more than the allowed
    ///   delta, or its speed falls below the allowed ratio of stable's. Before `minAttempts`, only
    ///   when the failures it already has would break the delta even if every attempt still to
    ///   come up to `minAttempts` succeeded: a canary that fails everything is stopped early.
    /// - `wait` while the canary has fewer than `minAttempts` judged attempts.
    /// - `promote` otherwise. Speed is compared only when both tracks transcoded media (no-op
    ///   jobs have none); without stable attempts the canary is held to no failures at all.
    public static func judge(canary: TrackOutcomes, stable: TrackOutcomes, criteria: RolloutCriteria) -> RolloutJudgement {
        let baseline = stable.failureRatio ?? 0
        let baselineText = stable.judged > 0 ? "stable's \(percent(baseline)) (\(stable.failures)/\(stable.judged))" : "0 % (stable has no attempts yet)"
        var speedRatio: Double?
        if let canarySpeed = canary.speed, let stableSpeed = stable.speed { speedRatio = canarySpeed / stableSpeed }
        let delta = canary.failureRatio.map { $0 - baseline }

        if canary.judged < criteria.minAttempts {
            // The best the canary can still do: every attempt up to minAttempts succeeds.
            let bestCase = Double(canary.failures) / Double(max(criteria.minAttempts, 1))
            if bestCase - baseline > criteria.maxFailureDelta {
                return RolloutJudgement(verdict: .rollback, reasons: [
                    "canary failed \(canary.failures) of \(canary.judged) attempts: even if the next \(criteria.minAttempts - canary.judged) succeed, its failure ratio (\(percent(bestCase))) stays more than \(points(criteria.maxFailureDelta)) above \(baselineText)",
                ], failureDelta: delta, speedRatio: speedRatio)
            }
            return RolloutJudgement(verdict: .wait, reasons: [
                "canary has \(canary.judged) of the \(criteria.minAttempts) attempts needed (succeeded or failed)",
            ], failureDelta: delta, speedRatio: speedRatio)
        }

        var problems: [String] = []
        var notes: [String] = []
        let ratio = canary.failureRatio ?? 0
        if ratio - baseline > criteria.maxFailureDelta {
            problems.append("canary failure ratio \(percent(ratio)) (\(canary.failures)/\(canary.judged)) is \(points(ratio - baseline)) above \(baselineText); at most \(points(criteria.maxFailureDelta)) allowed")
        } else {
            notes.append("canary failure ratio \(percent(ratio)) (\(canary.failures)/\(canary.judged)) against \(baselineText), within \(points(criteria.maxFailureDelta))")
        }
        if let speedRatio, let canarySpeed = canary.speed, let stableSpeed = stable.speed {
            let text = "canary speed \(speed(canarySpeed)) is \(percent(speedRatio)) of stable's \(speed(stableSpeed))"
            if speedRatio < criteria.minSpeedRatio {
                problems.append("\(text); at least \(percent(criteria.minSpeedRatio)) required")
            } else {
                notes.append("\(text), at least \(percent(criteria.minSpeedRatio)) required")
            }
        } else {
            notes.append("speed not compared: \(canary.speed == nil ? "the canary" : "stable") has transcoded no media yet")
        }
        if !problems.isEmpty { return RolloutJudgement(verdict: .rollback, reasons: problems, failureDelta: delta, speedRatio: speedRatio) }
        return RolloutJudgement(verdict: .promote, reasons: notes, failureDelta: delta, speedRatio: speedRatio)
    }

    static func percent(_ value: Double) -> String { String(format: "%.1f %%", value * 100) }
    static func points(_ value: Double) -> String { String(format: "%.1f points", value * 100) }
    static func speed(_ value: Double) -> String { String(format: "%.2f×", value) }
}
