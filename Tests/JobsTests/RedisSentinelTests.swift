import Foundation
import Jobs
import Redis
import TestSupport
import Testing

@Suite("redis+sentinel URLs")
struct RedisSentinelURLTests {
    static let a = RedisURL.Address(host: "10.0.0.1", port: 26379)
    static let b = RedisURL.Address(host: "sentinel-b", port: 5000)

    @Test("parses sentinels, service, database and credentials", arguments: [
        ("redis+sentinel://10.0.0.1/sg", RedisURL(endpoint: .sentinel(sentinels: [a], service: "sg"))),
        ("redis+sentinel://10.0.0.1:26379,sentinel-b:5000/sg/3", RedisURL(endpoint: .sentinel(sentinels: [a, b], service: "sg"), database: 3)),
        ("redis+sentinel://:s3cret@10.0.0.1/my-primary.1/", RedisURL(endpoint: .sentinel(sentinels: [a], service: "my-primary.1"), password: "s3cret")),
        ("redis+sentinel://app:p%40ss@10.0.0.1,sentinel-b:5000/sg", RedisURL(endpoint: .sentinel(sentinels: [a, b], service: "sg"), username: "app", password: "p@ss")),
        ("redis+sentinel://[::1]:26380/sg", RedisURL(endpoint: .sentinel(sentinels: [.init(host: "::1", port: 26380)], service: "sg"))),
    ])
    func parses(_ text: String, _ expected: RedisURL) throws {
        #expect(try RedisURL(text) == expected)
    }

    @Test("refuses a wrong part, naming it", arguments: [
        ("redis+sentinel://10.0.0.1", "no service name"),
        ("redis+sentinel://10.0.0.1/", "no service name"),
        ("redis+sentinel:///sg", "sentinel 1 is empty"),
        ("redis+sentinel://h1,,h2/sg", "sentinel 2 is empty"),
        ("redis+sentinel://h1,h2:http/sg", "sentinel 2 'h2:http': port 'http' is not a number"),
        ("redis+sentinel://h1:0/sg", "port 0 out of range"),
        ("redis+sentinel://h1:26379,[::1/sg", "unclosed '['"),
        ("redis+sentinel://:26379/sg", "has no host"),
        ("redis+sentinel://h1/s g", "service name 's g'"),
        ("redis+sentinel://h1/sg/x", "only a database number may follow, not 'x'"),
        ("redis+sentinel://h1/sg/1/2", "not '1/2'"),
        ("redis+sentinel://nopass@h1/sg", "credentials must be user:password"),
        ("rediss+sentinel://h1/sg", "must start with"),
    ])
    func refuses(_ text: String, _ reason: String) {
        let error = #expect(throws: RedisError.self) { try RedisURL(text) }
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }

    @Test("the description names every sentinel and never the password")
    func description() throws {
        let text = try RedisURL("redis+sentinel://u:hunter2@h1:1,h2:2/sg/4").description
        #expect(text == "redis+sentinel://h1:1,h2:2/sg/4")
    }
}

/// A primary, two replicas and three sentinels on loopback; the primary SIGKILLed mid-stream.
@Suite("redis sentinel failover", .serialized)
struct RedisSentinelFailoverTests {
    @Test("every acknowledged job survives a failover and completes, none twice")
    func failoverLosesNothing() async throws {
        try await withSentinelRedis { ha in
            // WAIT 1: a job is acknowledged only once the replica has it.
            let queue = JobQueue(redis: ha.client(connections: 2, waitReplicas: 1, waitTimeout: 2))
            let worker = JobQueue(redis: ha.client(connections: 2, waitReplicas: 1, waitTimeout: 2))
            try await queue.ensureGroups()
            var acknowledged: [String] = []
            for _ in 0..<20 { acknowledged.append(try await queue.enqueue(JobSpec(kind: .noop)).jobID) }
            let runs = RunCounter()
            // Half of them run and finish (acknowledged after WAIT) before the primary dies.
            try await runs.drain(worker, until: 10)
            #expect(await runs.total == 10)

            // Enqueue on while the primary is killed: a call in flight may fail; one that returns
            // an id is acknowledged and must survive.
            let enqueuer = Task { () -> (ids: [String], failures: Int) in
                var ids: [String] = []
                var failures = 0
                while ids.count < 20 {
                    do { ids.append(try await queue.enqueue(JobSpec(kind: .noop)).jobID) } catch { failures += 1 }
                    try? await Task.sleep(for: .milliseconds(20))
                }
                return (ids, failures)
            }
            try await Task.sleep(for: .milliseconds(100))
            ha.kill()
            let newPrimary = try await ha.failover(from: ha.primaryPort)
            #expect(ha.replicaPorts.contains(newPrimary))
            let (more, failures) = await enqueuer.value
            acknowledged += more
            #expect(failures < 20, "enqueues kept failing after the failover")

            let expected = Set(acknowledged)
            try await runs.drain(worker, until: expected.count, seconds: 30) { expected.contains($0) }
            for id in acknowledged {
                let record = try await queue.job(id)
                #expect(record?.state == .succeeded, "job \(id) was acknowledged but is \(String(describing: record?.state))")
            }
            let twice = await runs.counts.filter { $0.value > 1 }
            #expect(twice.isEmpty, "ran more than once: \(twice)")
        }
    }

    @Test("a primary demoted to a replica answers READONLY: the write goes again to the new primary")
    func demotedPrimary() async throws {
        try await withSentinelRedis { ha in
            let client = ha.client(connections: 1)
            try await client.send(["SET", "{sg}:before", "1"])  // leaves a pooled connection to the primary
            let sentinel = try RedisConnection(url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: ha.sentinelPorts[0])), timeout: 2)
            _ = try sentinel.send(["SENTINEL", "FAILOVER", ha.service])
            let newPrimary = try await ha.failover(from: ha.primaryPort)
            // What the sentinels do to a former primary that is still alive, done now rather than in
            // a few seconds: it follows the new one and refuses writes.
            let old = try RedisConnection(url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: ha.primaryPort)), timeout: 2)
            _ = try old.send(["REPLICAOF", "127.0.0.1", String(newPrimary)])
            try await client.send(["SET", "{sg}:after", "2"])
            let primary = try RedisConnection(url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: newPrimary)), timeout: 2)
            #expect(try primary.send(["GET", "{sg}:after"]).text == "2")
            #expect(try primary.send(["GET", "{sg}:before"]).text == "1")
            #expect(try old.send(["INFO", "errorstats"]).text?.contains("errorstat_READONLY") == true, "the pooled connection was answered READONLY")
        }
    }
}

/// How many times each job was started: the worker side of the tests above.
actor RunCounter {
    private(set) var counts: [String: Int] = [:]
    var total: Int { counts.values.reduce(0, +) }

    /// Fetches, starts and finishes jobs until `count` of them (among those `counted`) have run.
    func drain(_ queue: JobQueue, until count: Int, seconds: Double = 10, counted: @Sendable (String) -> Bool = { _ in true }) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while counts.keys.filter(counted).count < count {
            guard Date() < deadline else { throw RedisError.connect(endpoint: "test", reason: "only \(total) jobs ran") }
            let deliveries: [Delivery]
            do {
                deliveries = try await queue.fetch(consumer: "w1", count: min(10, count - counts.keys.filter(counted).count), block: 0.2)
            } catch { continue }
            for decision in try await queue.start(deliveries, consumer: "w1") {
                guard case .run(let lease, _) = decision else { continue }
                counts[lease.jobID, default: 0] += 1
                try await queue.finish(lease, .succeeded(version: nil))
            }
        }
    }
}

@Suite("WAIT for replicas")
struct ReplicaWaitTests {
    @Test("enqueue and finish are not acknowledged when no replica confirms the write")
    func unconfirmedWritesFail() async throws {
        try await withRedis { redis in
            // A server without replicas: WAIT 1 can only time out.
            let waiting = JobQueue(redis: redis.client(waitReplicas: 1, waitTimeout: 0.05))
            let plain = JobQueue(redis: redis.client())
            try await plain.ensureGroups()
            let error = await #expect(throws: RedisError.self) { try await waiting.enqueue(JobSpec(id: "unconfirmed-1", kind: .noop)) }
            #expect(error == .notReplicated(endpoint: redis.url.description, replicas: 0, wanted: 1), "\(String(describing: error))")
            // The write itself happened: the job is there, only not acknowledged as durable.
            #expect(try await plain.job("unconfirmed-1")?.state == .queued)
            let deliveries = try await plain.fetch(consumer: "w", count: 1, block: 0)
            guard case .run(let lease, _) = try #require(try await plain.start(deliveries, consumer: "w").first) else {
                Issue.record("not started")
                return
            }
            await #expect(throws: RedisError.self) { try await waiting.finish(lease, .succeeded(version: nil)) }
            #expect(try await plain.job("unconfirmed-1")?.state == .succeeded)
            // Sent again, as a worker retries it: the same attempt's end is recognised, not recorded twice.
            #expect(try await plain.finish(lease, .succeeded(version: nil)))
            #expect(try await plain.finish(lease, .failed("a late, different answer")))
            #expect(try await plain.job("unconfirmed-1")?.state == .succeeded)
            #expect(try await plain.stats().totals["succeeded"] == 1)
            #expect(try await plain.stats().totals["failed"] == nil)
        }
    }
}
