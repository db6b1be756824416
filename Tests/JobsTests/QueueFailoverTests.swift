import Foundation
import Jobs
import Redis
import TestSupport
import Testing

/// Issue 14's failover proof, on a real primary, two replicas and three sentinels on loopback:
/// jobs are enqueued (acknowledged after `WAIT 1`) while consumers lease them, work on them a few
/// hundred milliseconds and finish them through the queue's worker API; the primary is SIGKILLed
/// in the middle, a sentinel promotes a replica, and everything carries on against it.
@Suite("job queue through a Sentinel failover", .serialized)
struct QueueFailoverTests {
    static let jobs = 40
    static let consumers = 3
    /// Short, so that an entry whose lease the failover cut off is reclaimed within the test.
    static let leaseSeconds = 2.0

    @Test("the primary killed while jobs are enqueued and running: every acknowledged job completes, none twice")
    func killThePrimary() async throws {
        try await withSentinelRedis { ha in
            let began = Date()
            let ledger = Ledger()
            let stop = StopFlag()
            // However the test ends, the consumers stop (a failed expectation must not leave them looping).
            defer { stop.set() }
            func queue(connections: Int) -> JobQueue {
                JobQueue(redis: ha.client(connections: connections, timeout: 2, reconnectWindow: 20, waitReplicas: 1, waitTimeout: 2))
            }
            let producer = queue(connections: 2)
            try await producer.ensureGroups()
            let consumers = (0..<Self.consumers).map { index in
                let consumer = Consumer(
                    name: "c\(index)", queue: queue(connections: 2), fetcher: queue(connections: 1), ledger: ledger, stop: stop,
                    leaseSeconds: Self.leaseSeconds
                )
                return Task { await consumer.run() }
            }
            // A job is acknowledged when enqueue returns; one that throws (in flight when the
            // primary died, or not on a replica in time) may or may not exist, and is not counted.
            let producing = Task { () -> Int in
                var refused = 0
                while await ledger.acknowledged.count < Self.jobs, refused < Self.jobs {
                    do {
                        await ledger.enqueued(try await producer.enqueue(JobSpec(kind: .noop)).jobID)
                    } catch {
                        refused += 1
                    }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                return refused
            }

            // Killed mid-way: some jobs done, some held under a lease, more still to be enqueued.
            try await Self.waitUntil("jobs finished and running before the kill", seconds: 20) {
                let (finished, running) = (await ledger.recordedCount, await ledger.runningCount)
                return finished >= 8 && running > 0
            }
            let runningAtKill = await ledger.runningCount
            let acknowledgedAtKill = await ledger.acknowledged.count
            try await offPool { ha.kill() }
            let newPrimary = try await ha.failover(from: ha.primaryPort)
            #expect(ha.replicaPorts.contains(newPrimary))

            let refused = await producing.value
            let acknowledged = await ledger.acknowledged
            #expect(acknowledged.count == Self.jobs, "enqueues kept failing after the failover (\(refused) refused)")
            #expect(runningAtKill > 0 && acknowledgedAtKill < Self.jobs, "the kill came with jobs running and more to enqueue")

            // Every acknowledged job ends on the new primary; a generous bound, well under a minute.
            try await Self.waitUntil("every acknowledged job to succeed", seconds: 40) {
                let states = (try? await producer.redis.pipeline(acknowledged.map { ["HGET", producer.keys.job($0), "state"] })) ?? []
                return states.count == acknowledged.count && states.allSatisfy { $0.text == "succeeded" }
            }
            stop.set()
            for consumer in consumers { await consumer.value }

            // None twice, as the consumers saw it: one attempt's end recorded per job (a retry of
            // the same attempt's finish is that same end), every acknowledged job among them.
            let recorded = await ledger.recorded
            for id in acknowledged {
                #expect(recorded[id]?.count == 1, "job \(id): ends recorded under leases \(recorded[id] ?? [])")
            }
            #expect(recorded.values.allSatisfy { $0.count <= 1 }, "a job finished under two leases")
            // …and as Redis kept it: one `succeeded` event per job, and the counter agrees.
            var succeededEvents: [String: Int] = [:]
            for entry in try await producer.redis.send(["XRANGE", producer.keys.events, "-", "+"]).array ?? [] {
                guard let fields = entry.array?.last?.fieldMap, fields["state"] == "succeeded", let id = fields["job"] else { continue }
                succeededEvents[id, default: 0] += 1
            }
            for id in acknowledged { #expect(succeededEvents[id] == 1, "job \(id): \(succeededEvents[id] ?? 0) succeeded events") }
            #expect(succeededEvents.values.allSatisfy { $0 == 1 })
            #expect(try await producer.stats().totals["succeeded"] == succeededEvents.count)
            #expect(Date().timeIntervalSince(began) < 60)
        }
    }

    /// Polls `condition` every 100 ms; throws naming `what` after `seconds`.
    static func waitUntil(_ what: String, seconds: Double, _ condition: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while await !condition() {
            guard Date() < deadline else { throw RedisError.connect(endpoint: "test", reason: "\(what) did not happen within \(Int(seconds)) s") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// What the producer and the consumers saw.
private actor Ledger {
    private(set) var acknowledged: [String] = []
    /// Lease tokens being worked on.
    private var running: Set<String> = []
    /// Per job, the leases under which a finish was recorded (`finish` answered true).
    private(set) var recorded: [String: Set<String>] = [:]

    var runningCount: Int { running.count }
    var recordedCount: Int { recorded.values.reduce(0) { $0 + $1.count } }

    func enqueued(_ id: String) { acknowledged.append(id) }
    func started(_ lease: Lease) { running.insert(lease.token) }

    func ended(_ lease: Lease, recorded wasRecorded: Bool) {
        running.remove(lease.token)
        if wasRecorded { recorded[lease.jobID, default: []].insert(lease.token) }
    }
}

private final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    var isSet: Bool { lock.withLock { stopped } }
    func set() { lock.withLock { stopped = true } }
}

/// A worker reduced to the queue's protocol: reclaim or fetch, start, work (renewing once), finish,
/// retrying the finish as `Worker` does, since a failover may cut it off or leave it unreplicated.
private struct Consumer: Sendable {
    let name: String
    let queue: JobQueue
    /// Blocking reads hold a connection: a client of their own.
    let fetcher: JobQueue
    let ledger: Ledger
    let stop: StopFlag
    let leaseSeconds: Double

    func run() async {
        var lastReclaim = Date.distantPast
        while !stop.isSet {
            do {
                var deliveries: [Delivery] = []
                if Date().timeIntervalSince(lastReclaim) >= 0.5 {
                    lastReclaim = Date()
                    deliveries = try await queue.reclaim(consumer: name, leaseSeconds: leaseSeconds, count: 1)
                }
                if deliveries.isEmpty { deliveries = try await fetcher.fetch(consumer: name, count: 1, block: 0.2) }
                for decision in try await queue.start(deliveries, consumer: name) {
                    if case .run(let lease, _) = decision { await work(lease) }
                }
            } catch {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func work(_ lease: Lease) async {
        await ledger.started(lease)
        try? await Task.sleep(for: .milliseconds(150))
        // A lease lost (the entry reclaimed after the failover) is dropped, as a worker drops it.
        if (try? await queue.renew(lease, consumer: name)) == .lost {
            await ledger.ended(lease, recorded: false)
            return
        }
        try? await Task.sleep(for: .milliseconds(150))
        for attempt in 1...20 {
            do {
                await ledger.ended(lease, recorded: try await queue.finish(lease, .succeeded(version: nil)))
                return
            } catch {
                try? await Task.sleep(for: .milliseconds(200 * min(attempt, 5)))
            }
        }
        await ledger.ended(lease, recorded: false)
    }
}
