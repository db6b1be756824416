import Redis

/// The queue's keys (``Keyspace`` holds the rest).
extension Keyspace {
    /// The consumer group every worker reads through.
    public var group: String { "workers" }
    /// The stream of a priority's jobs.
    public func stream(_ priority: JobPriority) -> String { "\(tag):jobs:\(priority.rawValue)" }
    /// One job's record.
    public func job(_ id: String) -> String { "\(tag):job:\(id)" }
    /// Every job id by creation time (ms), for listing.
    public var index: String { "\(tag):jobs" }
    /// Jobs waiting for a retry, scored by when they are due (ms).
    public var delayed: String { "\(tag):delayed" }
    /// Dead letters: jobs that ran out of attempts, and stream entries that were not jobs.
    public var dead: String { "\(tag):dead" }
    /// State changes and progress, capped.
    public var events: String { "\(tag):events" }
    public func idempotency(_ key: String) -> String { "\(tag):idem:\(key)" }
    /// Live workers, scored by their last heartbeat (ms).
    public var workers: String { "\(tag):workers" }
    public func worker(_ id: String) -> String { "\(tag):worker:\(id)" }
    /// The worker count a farm should run.
    public func desiredWorkers(farm: String) -> String { "\(tag):farm:\(farm):desired" }
    /// A farm's supervisor's last report (running, desired, host, restarts), expiring with it.
    public func farmStatus(farm: String) -> String { "\(desiredWorkers(farm: farm)):status" }
    /// The names of farms that have run, for listing them.
    public var farms: String { "\(tag):farms" }
    /// Cumulative counters (jobs by outcome), for metrics across restarts.
    public var stats: String { "\(tag):stats" }
}

/// A job's priority: each has its own stream; workers drain `high` before `normal`.
public enum JobPriority: String, Sendable, Codable, CaseIterable {
    case high, normal

    /// In the order workers read them.
    public static let readOrder: [JobPriority] = [.high, .normal]
}
