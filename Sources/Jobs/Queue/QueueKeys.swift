/// The Redis keys of one StreamGate deployment.
///
/// Every key carries the same hash tag (`{sg}` by default), so all of them live in one slot and the
/// Lua scripts that move a job between them work on Redis Cluster too.
public struct QueueKeys: Sendable, Equatable {
    /// The hash tag's content, `sg` by default.
    public let prefix: String
    /// The consumer group every worker reads through.
    public let group = "workers"

    public init(prefix: String = "sg") {
        self.prefix = prefix
    }

    var tag: String { "{\(prefix)}" }

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
    /// Cumulative counters (jobs by outcome), for metrics across restarts.
    public var stats: String { "\(tag):stats" }
    /// The pub/sub channel announcing that an asset was republished or deleted (the message is the
    /// asset id); every origin drops what it cached of that asset.
    public var assetChanges: String { "\(tag):assets:changed" }
    /// The pub/sub channel announcing a revoked playback token (the message is the token id).
    public var tokenRevocations: String { "\(tag):tokens:revoked" }
    /// An asset's access policy (JSON); an asset without one is public.
    public func policy(_ asset: String) -> String { "\(tag):policy:\(asset)" }
    /// The origins' shared cache (L2): one object's key. Every L2 key shares one hash slot with its
    /// index, so the byte budget is kept by one script.
    public func cacheObject(_ name: String) -> String { "\(tag):l2:o:\(name)" }
    /// L2's index: object keys scored by when they expire (ms).
    public var cacheIndex: String { "\(tag):l2:index" }
    /// L2's object sizes, by object key.
    public var cacheSizes: String { "\(tag):l2:sizes" }
    /// L2's total bytes.
    public var cacheBytes: String { "\(tag):l2:bytes" }
}

/// A job's priority: each has its own stream; workers drain `high` before `normal`.
public enum JobPriority: String, Sendable, Codable, CaseIterable {
    case high, normal

    /// In the order workers read them.
    public static let readOrder: [JobPriority] = [.high, .normal]
}
