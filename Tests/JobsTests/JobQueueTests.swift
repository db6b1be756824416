import Foundation
import TestSupport
import Testing
@testable import Jobs

/// A queue on its own redis-server, with a second client for blocking reads.
final class TestQueue: Sendable {
    let redis: RedisFixture
    let queue: JobQueue
    let blocking: JobQueue

    init(redis: RedisFixture) async throws {
        self.redis = redis
        queue = JobQueue(redis: redis.client())
        blocking = JobQueue(redis: redis.client(connections: 1))
        try await queue.ensureGroups()
    }

    /// Fetches and starts one delivery as `consumer`.
    func take(_ consumer: String, block: Double = 0.5) async throws -> StartDecision? {
        guard let delivery = try await blocking.fetch(consumer: consumer, count: 1, block: block).first else { return nil }
        return try await queue.start(delivery, consumer: consumer)
    }
}

/// Runs `body` with a queue on a redis-server of its own, stopped afterwards (its clients too).
func withQueue<T>(
    appendOnly: Bool = false, isolation: isolated (any Actor)? = #isolation, _ body: (TestQueue) async throws -> T
) async throws -> T {
    try await withRedis(RedisOptions(appendOnly: appendOnly)) { redis in try await body(try await TestQueue(redis: redis)) }
}

extension StartDecision {
    var lease: Lease? { if case .run(let lease, _) = self { lease } else { nil } }
    var spec: JobSpec? { if case .run(_, let spec) = self { spec } else { nil } }
}

@Suite("job queue on Redis Streams")
struct JobQueueTests {
    @Test("enqueue → take → succeed: the record follows every step")
    func lifecycle() async throws {
        try await withQueue { test in
            let enqueued = try await test.queue.enqueue(JobSpec(source: "/media/in.mp4", profile: "fast"))
            #expect(enqueued.created)
            #expect(try await test.queue.job(enqueued.jobID)?.state == .queued)
            #expect(try await test.queue.stats().depth == 1)

            let decision = try #require(try await test.take("w1"))
            let lease = try #require(decision.lease)
            #expect(lease.jobID == enqueued.jobID && lease.attempt == 1)
            #expect(decision.spec?.source == "/media/in.mp4")
            #expect(lease.assetID == enqueued.assetID)
            let running = try #require(try await test.queue.job(enqueued.jobID))
            #expect(running.state == .running && running.worker == "w1" && running.attempts == 1)

            #expect(try await test.queue.report(lease, consumer: "w1", progress: JobProgress(percent: 40, stage: "encoding", fps: 90, speed: 3)) == .held)
            #expect(try await test.queue.job(enqueued.jobID)?.progress == 40)
            #expect(try await test.queue.finish(lease, .succeeded(version: "v1")))
            let done = try #require(try await test.queue.job(enqueued.jobID))
            #expect(done.state == .succeeded && done.version == "v1" && done.progress == 100)
            let stats = try await test.queue.stats()
            #expect(stats.depth == 0 && stats.pending == 0)
            #expect(stats.totals["succeeded"] == 1)
        }
    }

    @Test("a lapsed lease is reclaimed by another worker; the first can no longer finish")
    func reclaim() async throws {
        try await withQueue { test in
            let id = try await test.queue.enqueue(JobSpec(source: "/in.mp4")).jobID
            let first = try #require(try await test.take("dead-worker")?.lease)
            #expect(try await test.queue.reclaim(consumer: "w2", leaseSeconds: 60).isEmpty, "not before the lease ends")
            try await Task.sleep(for: .milliseconds(400))
            let reclaimed = try await test.queue.reclaim(consumer: "w2", leaseSeconds: 0.3)
            #expect(reclaimed.count == 1)
            let second = try #require(try await test.queue.start(reclaimed[0], consumer: "w2").lease)
            #expect(second.attempt == 1, "the attempt its dead worker held is given back")
            #expect(second.token != first.token)
            #expect(try await test.queue.renew(first, consumer: "dead-worker") == .lost)
            #expect(try await test.queue.report(first, consumer: "dead-worker", progress: JobProgress(percent: 1, stage: "x")) == .lost)
            #expect(try await test.queue.finish(first, .succeeded(version: "stale")) == false)
            #expect(try await test.queue.finish(second, .succeeded(version: "v2")))
            let record = try #require(try await test.queue.job(id))
            #expect(record.state == .succeeded && record.version == "v2" && record.attempts == 1)
            #expect(try await test.queue.redis.send(["HGET", test.queue.keys.job(id), "orphaned"]).text == "1")
        }
    }

    @Test("a renewed lease is never reclaimed, however long the job runs")
    func renewal() async throws {
        try await withQueue { test in
            _ = try await test.queue.enqueue(JobSpec(source: "/in.mp4"))
            let lease = try #require(try await test.take("w1")?.lease)
            // Idle past the lease, then renewed: a thief with a 5 s lease finds nothing to take… (5 s:
            // the renewal and the reclaim are moments apart, even on a loaded machine)
            try await Task.sleep(for: .milliseconds(5500))
            #expect(try await test.queue.renew(lease, consumer: "w1") == .held)
            #expect(try await test.queue.reclaim(consumer: "thief", leaseSeconds: 5).isEmpty)
            #expect(try await test.queue.renew(lease, consumer: "w1") == .held, "still ours")
            #expect(try await test.queue.finish(lease, .succeeded(version: nil)))
        }
    }

    @Test("a progress report renews the lease too")
    func progressRenews() async throws {
        try await withQueue { test in
            _ = try await test.queue.enqueue(JobSpec(source: "/in.mp4"))
            let lease = try #require(try await test.take("w1")?.lease)
            try await Task.sleep(for: .milliseconds(5500))
            #expect(try await test.queue.report(lease, consumer: "w1", progress: JobProgress(percent: 50, stage: "encoding")) == .held)
            #expect(try await test.queue.reclaim(consumer: "thief", leaseSeconds: 5).isEmpty, "reported progress, so not idle")
            #expect(try await test.queue.report(lease, consumer: "thief", progress: JobProgress(percent: 60, stage: "x")) == .lost,
                    "another consumer cannot report under this lease")
        }
    }

    @Test("retries wait in the delayed set, come back, and die after max attempts")
    func retriesThenDead() async throws {
        try await withQueue { test in
            let id = try await test.queue.enqueue(JobSpec(source: "/poison.mp4", maxAttempts: 2)).jobID
            let first = try #require(try await test.take("w1")?.lease)
            #expect(try await test.queue.finish(first, .retry("crashed (signal 11)", at: JobQueue.now() + 60_000)))
            #expect(try await test.queue.job(id)?.state == .retrying)
            #expect(try await test.queue.promoteDueRetries() == 0, "not due yet")
            // Make it due now rather than waiting a minute.
            try await test.queue.redis.send(["ZADD", test.queue.keys.delayed, "0", id])
            #expect(try await test.queue.promoteDueRetries() == 1)
            let second = try #require(try await test.take("w1")?.lease)
            #expect(second.attempt == 2)
            #expect(try await test.queue.finish(second, .dead("crashed (signal 11) on every attempt")))
            let record = try #require(try await test.queue.job(id))
            #expect(record.state == .dead && record.error?.contains("signal 11") == true)
            let letters = try await test.queue.deadLetters()
            #expect(letters.first?.fields["job"] == id)
            #expect(letters.first?.fields["reason"]?.contains("signal 11") == true)
        }
    }

    @Test("workers killed under a job never spend its attempts; one that loses its worker 10 times is dead-lettered at start")
    func killedWorkersDoNotDeadLetterAJob() async throws {
        try await withQueue { test in
            let id = try await test.queue.enqueue(JobSpec(source: "/in.mp4", maxAttempts: 1)).jobID
            var lease = try #require(try await test.take("w0")?.lease)
            // Each worker dies under the job; the next one reclaims it. Its only attempt is never spent.
            for round in 1..<Scripts.orphanLimit {
                try await Task.sleep(for: .milliseconds(300))
                let reclaimed = try await test.queue.reclaim(consumer: "w\(round)", leaseSeconds: 0.2)
                let delivery = try #require(reclaimed.first)
                let next = try #require(try await test.queue.start(delivery, consumer: "w\(round)").lease)
                #expect(next.attempt == 1 && next.token != lease.token)
                lease = next
            }
            try await Task.sleep(for: .milliseconds(300))
            let reclaimed = try await test.queue.reclaim(consumer: "last", leaseSeconds: 0.2)
            let decision = try await test.queue.start(try #require(reclaimed.first), consumer: "last")
            guard case .dead(let reason) = decision else { Issue.record("expected dead, got \(decision)"); return }
            #expect(reason.contains("its worker died \(Scripts.orphanLimit) times"), "\(reason)")
            #expect(try await test.queue.job(id)?.state == .dead)
            #expect(try await test.queue.stats().pending == 0)
        }
    }

    @Test("a job whose failed attempts used up max_attempts is dead-lettered at start")
    func outOfAttemptsAtStart() async throws {
        try await withQueue { test in
            let id = try await test.queue.enqueue(JobSpec(source: "/in.mp4", maxAttempts: 1)).jobID
            let lease = try #require(try await test.take("w1")?.lease)
            #expect(try await test.queue.finish(lease, .retry("crashed (signal 11)", at: 0)))
            #expect(try await test.queue.promoteDueRetries() == 1)
            let decision = try #require(try await test.take("w1"))
            guard case .dead(let reason) = decision else { Issue.record("expected dead, got \(decision)"); return }
            #expect(reason.contains("gave up after 1 attempts: crashed (signal 11)"), "\(reason)")
            #expect(try await test.queue.job(id)?.state == .dead)
            #expect(try await test.queue.stats().pending == 0)
        }
    }

    @Test("a plain XADD is a job; a malformed one is dead-lettered with the reason", arguments: [
        (["job", #"{"source":"/in.mp4","asset_id":"plain"}"#], nil as String?),
        (["source", "/in.mp4"], "field 'job' is required"),
        (["job", "{not json"], "not a JSON object"),
        (["job", #"{"kind":"transcode"}"#], "field 'source' is required"),
        (["job", #"{"source":"/x","max_attempts":"three"}"#], "max_attempts"),
        (["job", #"{"source":"/x","priority":"urgent"}"#], "priority"),
        (["job", #"{"source":"/x","asset_id":"../etc"}"#], "asset_id"),
    ])
    func plainXADD(fields: [String], reason: String?) async throws {
        try await withQueue { test in
            let entry = try await test.queue.redis.send(["XADD", test.queue.keys.stream(.normal), "*"] + fields).text!
            let decision = try #require(try await test.take("w1"))
            if let reason {
                guard case .rejected(let why) = decision else { Issue.record("expected a rejection, got \(decision)"); return }
                #expect(why.contains(reason), "\(why)")
                let letter = try #require(try await test.queue.deadLetters().first)
                #expect(letter.fields["entry"] == entry && letter.fields["reason"]?.contains(reason) == true)
                #expect(try await test.queue.stats().pending == 0, "acknowledged")
            } else {
                let lease = try #require(decision.lease)
                #expect(lease.jobID == entry, "the entry id names a job enqueued without one")
                #expect(lease.assetID == "plain")
                #expect(try await test.queue.job(entry)?.state == .running)
            }
        }
    }

    @Test("cancel: a queued job at once, a running one through its worker's next renewal")
    func cancel() async throws {
        try await withQueue { test in
            let queued = try await test.queue.enqueue(JobSpec(source: "/a.mp4")).jobID
            let running = try await test.queue.enqueue(JobSpec(source: "/b.mp4")).jobID
            // Take the first one (queued is the older entry) and cancel the other before it is taken.
            let lease = try #require(try await test.take("w1")?.lease)
            #expect(lease.jobID == queued)
            #expect(try await test.queue.cancel(running) == .cancelled)
            #expect(try await test.queue.job(running)?.state == .cancelled)
            #expect(try await test.take("w1", block: 0.2) == nil, "a cancelled job is never handed out")

            #expect(try await test.queue.cancel(queued) == .cancelling)
            #expect(try await test.queue.renew(lease, consumer: "w1") == .cancelRequested)
            #expect(try await test.queue.finish(lease, .cancelled))
            #expect(try await test.queue.job(queued)?.state == .cancelled)
            #expect(try await test.queue.cancel(queued) == .finished)
            #expect(try await test.queue.cancel("nosuchjob") == .missing)
        }
    }

    @Test("an idempotency key returns the first job instead of a second")
    func idempotency() async throws {
        try await withQueue { test in
            let first = try await test.queue.enqueue(JobSpec(source: "/a.mp4", idempotencyKey: "upload-42"))
            let again = try await test.queue.enqueue(JobSpec(source: "/a.mp4", idempotencyKey: "upload-42"))
            #expect(first.created && !again.created)
            #expect(again.jobID == first.jobID && again.assetID == first.assetID)
            let other = try await test.queue.enqueue(JobSpec(source: "/a.mp4", idempotencyKey: "upload-43"))
            #expect(other.jobID != first.jobID)
            #expect(try await test.queue.stats().depth == 2)
        }
    }

    @Test("high priority jobs are handed out before older normal ones")
    func priority() async throws {
        try await withQueue { test in
            let normal = try await test.queue.enqueue(JobSpec(source: "/n.mp4", priority: .normal)).jobID
            let high = try await test.queue.enqueue(JobSpec(source: "/h.mp4", priority: .high)).jobID
            #expect(try await test.take("w1")?.lease?.jobID == high)
            #expect(try await test.take("w1")?.lease?.jobID == normal)
        }
    }

    @Test("release puts a job straight back without spending an attempt")
    func release() async throws {
        try await withQueue { test in
            let id = try await test.queue.enqueue(JobSpec(source: "/a.mp4")).jobID
            let lease = try #require(try await test.take("w1")?.lease)
            #expect(try await test.queue.finish(lease, .release))
            let again = try #require(try await test.take("w2")?.lease)
            #expect(again.jobID == id && again.attempt == 1)
        }
    }

    @Test("a store outage postpones a job without spending its attempts, so it is never dead-lettered for it")
    func storeOutageSpendsNoAttempt() async throws {
        try await withQueue { test in
            let id = try await test.queue.enqueue(JobSpec(source: "/a.mp4", maxAttempts: 1)).jobID
            // Three attempts in a row meet a full store: each is postponed, none counted.
            for _ in 0..<3 {
                let lease = try #require(try await test.take("w1")?.lease)
                #expect(lease.attempt == 1)
                #expect(try await test.queue.finish(lease, .postpone("no space left on device", at: 0)))
                let record = try #require(try await test.queue.job(id))
                #expect(record.state == .retrying && record.attempts == 0 && record.error == "no space left on device")
                #expect(try await test.queue.promoteDueRetries() == 1)
            }
            let last = try #require(try await test.take("w1")?.lease)
            #expect(try await test.queue.finish(last, .succeeded(version: nil)))
            #expect(try await test.queue.job(id)?.state == .succeeded)
        }
    }

    @Test("jobs survive a Redis restart with the AOF on")
    func survivesRestart() async throws {
        try await withQueue(appendOnly: true) { test in
            let ids = try await test.queue.enqueueNoops(count: 50)
            let lease = try #require(try await test.take("w1")?.lease)
            // appendfsync everysec: give the AOF its second.
            try await Task.sleep(for: .milliseconds(1200))
            try test.redis.restart()
            // Each client learns of the restart on its first call (which may or may not have run, so
            // the client reports it rather than resending); the next calls reconnect.
            _ = try? await test.queue.redis.send(["PING"])
            _ = try? await test.blocking.redis.send(["PING"])
            let stats = try await test.queue.stats()
            #expect(stats.depth == 49 && stats.pending == 1)
            #expect(try await test.queue.finish(lease, .succeeded(version: nil)), "the lease survived too")
            var done = 1
            while let decision = try await test.take("w1", block: 0.2) {
                if let lease = decision.lease {
                    #expect(try await test.queue.finish(lease, .succeeded(version: nil)))
                    done += 1
                }
            }
            #expect(done == ids.count)
        }
    }

    @Test("no-op jobs run inline: taken and finished in one step, with the same record")
    func inline() async throws {
        try await withQueue { test in
            let ids = try await test.queue.enqueueNoops(count: 3)
            let transcode = try await test.queue.enqueue(JobSpec(source: "/a.mp4")).jobID
            let deliveries = try await test.blocking.fetch(consumer: "w1", count: 10, block: 0.2)
            #expect(deliveries.count == 4)
            let decisions = try await test.queue.start(deliveries, consumer: "w1", inline: true)
            var inlined: [String] = []
            for decision in decisions {
                switch decision {
                case .ranInline(let id, let attempt, let spec):
                    #expect(attempt == 1 && spec.kind == .noop)
                    inlined.append(id)
                case .run(let lease, _):
                    #expect(lease.jobID == transcode, "a transcode is started, not run inline")
                default:
                    Issue.record("unexpected \(decision)")
                }
            }
            #expect(inlined.sorted() == ids.sorted())
            for id in ids {
                let record = try #require(try await test.queue.job(id))
                #expect(record.state == .succeeded && record.attempts == 1 && record.worker == "w1")
            }
            let stats = try await test.queue.stats()
            #expect(stats.pending == 1 && stats.totals["succeeded"] == 3)
            let events = try await test.blocking.events(after: "0", block: 0.1)
            // Taken and finished in one atomic step, it was never observably running.
            #expect(events.filter { $0.fields["job"] == ids[0] }.compactMap { $0.fields["state"] } == ["queued", "succeeded"])
        }
    }

    @Test("events record every state change")
    func events() async throws {
        try await withQueue { test in
            let id = try await test.queue.enqueue(JobSpec(source: "/a.mp4")).jobID
            let lease = try #require(try await test.take("w1")?.lease)
            _ = try await test.queue.report(lease, consumer: "w1", progress: JobProgress(percent: 50, stage: "encoding"))
            _ = try await test.queue.finish(lease, .failed("bad input: moov atom not found"))
            let events = try await test.blocking.events(after: "0", block: 0.1)
            let states = events.filter { $0.fields["job"] == id }.compactMap { $0.fields["state"] }
            #expect(states == ["queued", "running", "running", "failed"])
            #expect(events.last?.fields["error"] == "bad input: moov atom not found")
        }
    }
}
