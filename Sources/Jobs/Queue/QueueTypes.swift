import Foundation

/// A stream entry handed to a worker (new, or reclaimed from a dead worker).
public struct Delivery: Sendable, Equatable {
    public var priority: JobPriority
    public var stream: String
    public var entry: String
    public var fields: [String: String]

    /// The job the entry carries, when it is one.
    public var spec: JobSpec? { fields["job"].flatMap { try? JobSpec.parse($0) } }
}

/// What a worker may do with a delivery, decided atomically by ``JobQueue/start(_:consumer:)``.
public enum StartDecision: Sendable, Equatable {
    /// Run it under this lease.
    case run(Lease, JobSpec)
    /// Nothing to do (finished, cancelled, superseded); the entry was acknowledged.
    case skip(String)
    /// Out of attempts; dead-lettered.
    case dead(String)
    /// Not a job; dead-lettered with this reason.
    case rejected(String)
    /// A job that runs inline (no-op): taken and finished as succeeded in the same step.
    case ranInline(jobID: String, attempt: Int, JobSpec)
}

/// A worker's hold on a running job. Every write under it checks it is still current, so a worker
/// whose lease lapsed can neither report progress nor finish the job.
public struct Lease: Sendable, Equatable {
    public var jobID: String
    public var token: String
    public var stream: String
    public var entry: String
    public var attempt: Int
    public var assetID: String?

    public init(jobID: String, token: String, stream: String, entry: String, attempt: Int, assetID: String?) {
        self.jobID = jobID
        self.token = token
        self.stream = stream
        self.entry = entry
        self.attempt = attempt
        self.assetID = assetID
    }
}

/// The answer of a lease renewal or a progress write.
public enum LeaseStatus: Sendable, Equatable {
    case held
    case cancelRequested
    case lost
}

/// How an attempt ended.
public enum Outcome: Sendable, Equatable {
    case succeeded(version: String?)
    /// A permanent failure: bad input, unknown profile. No retry.
    case failed(String)
    /// A transient failure: retried at `at` (ms since the epoch).
    case retry(String, at: Int64)
    /// Out of attempts.
    case dead(String)
    /// Not the job's failure but the farm's (its store is full or unwritable): retried at `at` like
    /// ``retry(_:at:)``, the attempt not counted, so an outage dead-letters nothing.
    case postpone(String, at: Int64)
    case cancelled
    /// Back to the queue at once, the attempt not counted (a worker shutting down).
    case release

    public var name: String {
        switch self {
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .retry: "retry"
        case .dead: "dead"
        case .postpone: "postpone"
        case .cancelled: "cancelled"
        case .release: "release"
        }
    }

    /// Why the attempt did not succeed, when it failed (nil for a success, a cancel or a release).
    public var reason: String? {
        switch self {
        case .failed(let why), .retry(let why, _), .dead(let why), .postpone(let why, _): why
        case .succeeded, .cancelled, .release: nil
        }
    }

    /// Whether the job ends with this outcome (it is not run again).
    public var isFinal: Bool {
        switch self {
        case .succeeded, .failed, .dead, .cancelled: true
        case .retry, .postpone, .release: false
        }
    }
}

/// Queue depth and health, for `streamgate queue`, `GET /v1/queue` and metrics.
public struct QueueStats: Sendable, Codable, Equatable {
    public struct PriorityStats: Sendable, Codable, Equatable {
        /// Entries in the stream (waiting + being worked on).
        public var length: Int
        /// Entries never delivered to a worker (XINFO GROUPS lag).
        public var lag: Int
        /// Entries delivered and not yet acknowledged.
        public var pending: Int
        /// Age of the oldest entry not yet delivered, seconds.
        public var oldestWaitingSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case length, lag, pending, oldestWaitingSeconds = "oldest_waiting_s"
        }
    }

    public var priorities: [String: PriorityStats]
    public var delayed: Int
    public var dead: Int
    public var workers: Int
    public var totals: [String: Int]

    /// Jobs waiting for a worker, over every priority.
    public var depth: Int { priorities.values.reduce(0) { $0 + $1.lag } }
    public var pending: Int { priorities.values.reduce(0) { $0 + $1.pending } }
    public var oldestWaitingSeconds: Double? { priorities.values.compactMap(\.oldestWaitingSeconds).max() }
}

/// A running job's progress, as workers report it.
public struct JobProgress: Sendable, Equatable {
    /// 0…100, when known.
    public var percent: Double?
    public var stage: String
    public var fps: Double?
    public var speed: Double?
    public var etaSeconds: Double?

    public init(percent: Double?, stage: String, fps: Double? = nil, speed: Double? = nil, etaSeconds: Double? = nil) {
        self.percent = percent
        self.stage = stage
        self.fps = fps
        self.speed = speed
        self.etaSeconds = etaSeconds
    }
}
