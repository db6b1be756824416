import Foundation
import Jobs
import Logging
import NIOConcurrencyHelpers
import Redis
import Metrics
import Store
import Traces
import Tracing
import Processes

/// A worker: takes jobs from the queue and runs each transcode in a child process, holding the job's
/// lease while it runs.
///
/// - Renews the lease every third of its length and reports progress at most every 500 ms.
/// - Kills a child that outlives the job's time limit, and retries it; retries back off
///   exponentially with jitter; a job out of attempts is dead-lettered.
/// - A job whose lease was lost (this worker stalled and another took it over) is killed at once
///   and never finished here.
/// - Cancellation reaches a running job within a renewal or progress interval (≤ 0.5 s).
/// - ``drain()`` stops taking jobs and lets running ones finish; ``release()`` stops them and puts
///   them straight back in the queue, attempts not counted.
/// - A transcode that fails on the store (full, unwritable) is postponed, its attempt not counted,
///   and the worker takes no job for a while (1 s, doubling up to 30 s, until a transcode publishes):
///   a store outage delays jobs, it does not fail or dead-letter them.
/// - A job whose asset is already published by an earlier attempt of the same job (its worker died
///   between publishing and recording it) succeeds with that version, without transcoding again.
/// - Each attempt owns its staging: the worker makes it through its store, the child only writes
///   into it, the worker stores each file the child reports finished and publishes the version
///   when the child succeeds, and removes what is left when the attempt ends, however it ends.
public final class Worker: Sendable {
    public let configuration: WorkerConfiguration
    let queue: JobQueue
    /// A client of its own for the blocking reads.
    private let fetcher: JobQueue
    let logger: Logger
    private let webhooks: WebhookSender
    let state = NIOLockedValueBox(State())

    struct State {
        var draining = false
        var drainStarted: Date?
        var releasing = false
        var running: Set<String> = []
        var jobsDone = 0
        var storeFailures = 0
        var storePausedUntil: Date?
        /// Split transcodes this worker coordinates: they hold their jobs' leases but take no
        /// slot, since their chunks run as jobs of their own.
        var coordinators: [String: Task<Void, Never>] = [:]
        /// What each transcode that published measured, by lease token, until its end is recorded.
        var timings: [String: AttemptTiming] = [:]
        /// A canary's last answer from the rollout, to log only its changes.
        var canaryState: CanarySlots.State?
    }

    public init(configuration: WorkerConfiguration, queue: JobQueue, fetcher: JobQueue, logger: Logger) {
        webhooks = WebhookSender(secret: configuration.webhookSecret, policy: configuration.webhookPolicy, logger: logger)
        self.configuration = configuration
        self.queue = queue
        self.fetcher = fetcher
        self.logger = logger
    }

    /// Stop taking jobs; finish the running ones.
    public func drain() {
        state.withLockedValue {
            $0.draining = true
            if $0.drainStarted == nil { $0.drainStarted = Date() }
        }
        logger.info("draining: finishing running jobs, taking no new ones")
    }

    /// Stop taking jobs and hand the running ones back to the queue now.
    public func release() {
        state.withLockedValue {
            $0.draining = true
            $0.releasing = true
        }
        logger.info("releasing running jobs back to the queue")
    }

    var isDraining: Bool { state.withLockedValue { $0.draining } }
    /// True once jobs must go back to the queue: asked to, or draining for longer than allowed.
    var isReleasing: Bool {
        state.withLockedValue { state in
            if state.releasing { return true }
            guard let started = state.drainStarted, let limit = configuration.drainTimeoutSeconds else { return false }
            return Date().timeIntervalSince(started) >= limit
        }
    }

    /// Runs until drained (or released) and every job it holds has ended.
    public func run() async throws {
        try await retrying("create consumer groups") { try await self.queue.ensureGroups() }
        let heartbeat = Task { await self.heartbeatLoop() }
        defer { heartbeat.cancel() }
        logger.info("worker started", metadata: [
            "id": "\(configuration.id)", "concurrency": "\(configuration.concurrency)", "track": "\(configuration.track.rawValue)",
        ])

        await withTaskGroup(of: Void.self) { group in
            var running = 0
            var lastReclaim = Date.distantPast
            var lastPromote = Date.distantPast
            var failures = 0
            while !isDraining {
                if running >= configuration.concurrency {
                    await group.next()
                    running -= 1
                    continue
                }
                do {
                    if Date().timeIntervalSince(lastPromote) >= 1 {
                        lastPromote = Date()
                        try await queue.promoteDueRetries()
                    }
                    // The store just failed: leave the queue to workers that can write, for now.
                    if let until = state.withLockedValue({ $0.storePausedUntil }), until > Date() {
                        try? await Task.sleep(for: .seconds(min(0.5, until.timeIntervalSinceNow)))
                        continue
                    }
                    // A canary takes only its share, asked before it reads (Worker+Track.swift).
                    let slots = try await admission(wanted: configuration.concurrency - running)
                    if slots.count == 0 {
                        try? await Task.sleep(for: .seconds(Double.random(in: 0.25...0.5)))
                        continue
                    }
                    var deliveries: [Delivery] = []
                    if Date().timeIntervalSince(lastReclaim) >= max(0.5, configuration.leaseSeconds / 4) {
                        lastReclaim = Date()
                        deliveries = try await queue.reclaim(
                            consumer: configuration.id, leaseSeconds: configuration.leaseSeconds, count: slots.count
                        )
                        for delivery in deliveries {
                            logger.warning("reclaimed a job whose lease ran out", metadata: ["entry": "\(delivery.entry)"])
                        }
                    }
                    if deliveries.isEmpty {
                        deliveries = try await fetcher.fetch(consumer: configuration.id, count: slots.count, block: 1)
                    }
                    failures = 0
                    // No-op jobs (for measuring the queue) are taken and finished in the same step.
                    let decisions = try await queue.start(
                        deliveries, consumer: configuration.id, inline: true, track: configuration.track, reserved: slots.window
                    )
                    await giveBack(slots, used: decisions.filter(\.startedAttempt).count)
                    var inlineDone = 0
                    for (delivery, decision) in zip(deliveries, decisions) {
                        switch decision {
                        case .ranInline(let jobID, let attempt, let spec):
                            inlineDone += 1
                            WorkerMetrics.ended("succeeded")
                            if spec.callbackURL != nil {
                                let lease = Lease(jobID: jobID, token: "", stream: delivery.stream, entry: delivery.entry, attempt: attempt, assetID: spec.assetID)
                                notify(spec: spec, lease: lease, outcome: .succeeded(version: nil))
                            }
                        case .run(let lease, let spec):
                            running += 1
                            group.addTask { await self.runJob(lease: lease, spec: spec) }
                        case .skip(let why):
                            logger.debug("skipped an entry", metadata: ["entry": "\(delivery.entry)", "why": "\(why)"])
                            // A job cancelled before any worker took it (or while its worker was dead) ends here.
                            if why == "cancelled" {
                                await removeSealedUpload(of: delivery.spec)
                                await withdrawAbandonedGrowth(of: delivery)
                                await abandonSplit(of: delivery)
                            }
                        case .dead(let reason):
                            logger.error("dead-lettered", metadata: ["entry": "\(delivery.entry)", "reason": "\(reason)"])
                            await removeSealedUpload(of: delivery.spec)
                            await withdrawAbandonedGrowth(of: delivery)
                            await abandonSplit(of: delivery)
                        case .rejected(let reason):
                            logger.error("rejected a stream entry that is not a job", metadata: ["entry": "\(delivery.entry)", "reason": "\(reason)"])
                        }
                    }
                    if inlineDone > 0 { state.withLockedValue { $0.jobsDone += inlineDone } }
                } catch {
                    failures += 1
                    let delay = Self.backoff(afterFailures: failures)
                    logger.error("queue unavailable; retrying", metadata: ["error": "\(error)", "in_s": "\(String(format: "%.2f", delay))"])
                    try? await Task.sleep(for: .seconds(delay))
                }
            }
            await group.waitForAll()
        }
        // Coordinators hand their jobs back once draining: whoever runs next resumes them.
        for coordinator in state.withLockedValue({ Array($0.coordinators.values) }) { await coordinator.value }
        _ = try? await queue.redis.send(["ZREM", queue.keys.workers, configuration.id])
        _ = try? await queue.redis.send(["DEL", queue.keys.worker(configuration.id)])
        await webhooks.shutdown()
        logger.info("worker stopped", metadata: ["jobs_done": "\(state.withLockedValue { $0.jobsDone })"])
    }

    // MARK: - One job

    private func runJob(lease: Lease, spec: JobSpec) async {
        WorkerMetrics.running(state.withLockedValue { $0.running.insert(lease.jobID); return $0.running.count })
        defer {
            WorkerMetrics.running(state.withLockedValue {
                $0.running.remove(lease.jobID)
                $0.jobsDone += 1
                return $0.running.count
            })
        }
        // Each attempt is a span of the trace the job was enqueued in (a new trace when it has none).
        await Traces.traced("job.attempt", context: spec.trace?.instrumentationContext, ofKind: .consumer) { span in
            span?.updateAttributes { attributes in
                attributes["streamgate.job.id"] = lease.jobID
                attributes["streamgate.job.kind"] = spec.kind.rawValue
                attributes["streamgate.job.attempt"] = lease.attempt
                attributes["streamgate.worker.id"] = configuration.id
                if let asset = lease.assetID ?? spec.assetID { attributes["streamgate.asset.id"] = asset }
            }
            notify(spec: spec, lease: lease, state: "running")
            let outcome: Outcome?
            switch spec.kind {
            case .noop: outcome = .succeeded(version: nil)  // normally finished inline, in batches
            case .transcode: outcome = await runTranscode(lease: lease, spec: spec)
            case .chunk: outcome = await runChunk(lease: lease, spec: spec)
            }
            // nil: the job is another worker's now (any growth of it too), or a coordinator's.
            guard let outcome else {
                span?.attributes["streamgate.job.outcome"] = "handed on"
                return
            }
            span?.attributes["streamgate.job.outcome"] = outcome.name
            if let reason = outcome.reason { span?.setStatus(SpanStatus(code: .error, message: reason)) }
            await conclude(lease: lease, spec: spec, outcome: outcome)
        }
    }

    /// Records an attempt's end, and what follows from it: a growth it left withdrawn, the sealed
    /// upload removed once the job is over, the callback told.
    func conclude(lease: Lease, spec: JobSpec, outcome: Outcome) async {
        if case .succeeded = outcome {} else if spec.kind == .transcode, let asset = (lease.assetID ?? spec.assetID).flatMap({ try? AssetID($0) }) {
            // A growth an earlier attempt of this job showed, and this one did not replace (it
            // failed before it could): no half asset stays shown. A split's next attempt resumes
            // it, growth and all, unless the job is over.
            let plan = try? await queue.fields([JobQueue.SplitField.plan.rawValue], ofJobs: [lease.jobID]).first?[0]
            if outcome.isFinal || plan == nil { _ = await withdrawGrowth(of: asset, by: lease.jobID) }
        }
        if await finish(lease, outcome) {
            if outcome.isFinal { await removeSealedUpload(of: spec) }
            notify(spec: spec, lease: lease, outcome: outcome)
        }
    }

    /// A sealed upload has served its purpose once its job has ended, whichever way (published,
    /// failed, dead or cancelled), unless the job asked to keep it. The store removes it, as the
    /// API does for a job cancelled while queued, and only from its own uploads.
    private func removeSealedUpload(of spec: JobSpec?) async {
        guard let source = spec?.sealedUploadToRemove, let uploads = (configuration.storage as? any SealedUploadStorage)?.sealedUploads else { return }
        _ = try? await uploads.removeSource(source)
    }

    /// A job that ended with no worker running it (out of attempts when reclaimed, or cancelled
    /// while its worker was dead) may have left the version it showed growing: withdrawn, so no
    /// asset stays growing, never to end.
    private func withdrawAbandonedGrowth(of delivery: Delivery) async {
        guard let spec = delivery.spec, let asset = spec.assetID.flatMap({ try? AssetID($0) }) else { return }
        if await withdrawGrowth(of: asset, by: spec.id ?? delivery.entry) {
            logger.warning("withdrew the growing version of a job that ended without its worker", metadata: ["asset": "\(asset)"])
        }
    }

    /// Withdraws `asset`'s version when it still grows for `jobID` (and only then), and tells
    /// the origins; true when there was one.
    func withdrawGrowth(of asset: AssetID, by jobID: String) async -> Bool {
        guard await configuration.storage.withdrawGrowth(of: asset, by: jobID) else { return false }
        _ = try? await queue.redis.announceAssetChange(asset.rawValue, in: queue.keys)
        return true
    }

    /// Tells the job's callback URL, if it has one.
    func notify(spec: JobSpec, lease: Lease, state: String, error: String? = nil, version: String? = nil) {
        guard let url = spec.callbackURL else { return }
        let asset = lease.assetID ?? spec.assetID
        webhooks.send(
            WebhookSender.Event(
                type: "job.\(state)", jobID: lease.jobID, state: state, assetID: asset, attempt: lease.attempt, error: error,
                version: version, playbackPath: state == "succeeded" || state == "playable" ? asset.map { "/v/\($0)/master.m3u8" } : nil,
                at: ISO8601DateFormatter().string(from: Date())
            ),
            to: url
        )
    }

    private func notify(spec: JobSpec, lease: Lease, outcome: Outcome) {
        switch outcome {
        case .succeeded(let version): notify(spec: spec, lease: lease, state: "succeeded", version: version)
        case .failed(let reason): notify(spec: spec, lease: lease, state: "failed", error: reason)
        case .retry(let reason, _), .postpone(let reason, _): notify(spec: spec, lease: lease, state: "retrying", error: reason)
        case .dead(let reason): notify(spec: spec, lease: lease, state: "dead", error: reason)
        case .cancelled: notify(spec: spec, lease: lease, state: "cancelled")
        case .release: notify(spec: spec, lease: lease, state: "queued")
        }
    }

    /// Records the end of an attempt; true when it was recorded (the lease was still ours).
    @discardableResult
    private func finish(_ lease: Lease, _ outcome: Outcome) async -> Bool {
        do {
            let timing = state.withLockedValue { $0.timings.removeValue(forKey: lease.token) }
            let recorded = try await retrying("finish job \(lease.jobID)", attempts: 8) {
                try await self.queue.finish(lease, outcome, timing: timing)
            }
            if recorded {
                WorkerMetrics.ended(outcome.name)
                logger.info("job ended", metadata: ["job": "\(lease.jobID)", "outcome": "\(outcome)", "attempt": "\(lease.attempt)"])
            } else {
                logger.warning("job was taken over by another worker; its result here is dropped", metadata: ["job": "\(lease.jobID)"])
            }
            return recorded
        } catch {
            // The lease runs out and another worker reclaims the job: nothing is lost.
            logger.error("cannot record the end of a job", metadata: ["job": "\(lease.jobID)", "error": "\(error)"])
            return false
        }
    }

    // MARK: - Heartbeats

    private func heartbeatLoop() async {
        let started = Int64(Date().timeIntervalSince1970 * 1000)
        let host = WorkerConfiguration.hostName()
        while !Task.isCancelled {
            let snapshot = state.withLockedValue { $0 }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let key = queue.keys.worker(configuration.id)
            _ = try? await queue.redis.pipeline([
                [
                    "HSET", key, "id", configuration.id, "host", host, "pid", String(getpid()), "started_at", String(started),
                    "heartbeat_at", String(now), "concurrency", String(configuration.concurrency),
                    "jobs", snapshot.running.sorted().joined(separator: ","), "jobs_done", String(snapshot.jobsDone),
                    "state", snapshot.releasing ? "releasing" : snapshot.draining ? "draining" : "running",
                    "track", configuration.track.rawValue,
                ],
                ["EXPIRE", key, String(Int(configuration.heartbeatSeconds * 5 + 1))],
                ["ZADD", queue.keys.workers, String(now), configuration.id],
                ["ZREMRANGEBYSCORE", queue.keys.workers, "-inf", String(now - 3_600_000)],
            ])
            try? await Task.sleep(for: .seconds(configuration.heartbeatSeconds))
        }
    }

    /// Seconds to wait after `failures` failed calls to Redis: doubling from 0.2 s up to 5 s, with jitter.
    static func backoff(afterFailures failures: Int) -> Double {
        min(5, 0.1 * pow(2, Double(min(failures, 6)))) * Double.random(in: 0.5...1)
    }

    private func retrying<T>(_ what: String, attempts: Int = .max, _ body: () async throws -> T) async throws -> T {
        var failures = 0
        while true {
            do {
                return try await body()
            } catch {
                failures += 1
                guard failures < attempts, !Task.isCancelled else { throw error }
                let delay = Self.backoff(afterFailures: failures)
                logger.warning("\(what) failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(delay))
            }
        }
    }
}
