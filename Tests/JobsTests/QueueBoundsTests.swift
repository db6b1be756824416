import Foundation
import TestSupport
import Testing
@testable import Jobs

/// Nothing the queue keeps in Redis grows without bound: the dead-letter stream and the index of
/// job ids are capped like the events stream, whatever is thrown at the queue.
@Suite("job queue: bounded keys")
struct QueueBoundsTests {
    @Test("the dead-letter stream is capped: a flood of malformed entries cannot fill Redis")
    func deadLettersAreCapped() async throws {
        try await withRedis { redis in
            let queue = JobQueue(redis: redis.client(), eventsMaxLength: 10)
            try await queue.ensureGroups()
            let flood = 600
            _ = try await queue.redis.pipeline((0..<flood).map { _ in ["XADD", queue.keys.stream(.normal), "*", "junk", "x"] })
            var rejected = 0
            while rejected < flood {
                let deliveries = try await queue.fetch(consumer: "w", count: 100, block: 0.2)
                if deliveries.isEmpty { break }
                rejected += try await queue.start(deliveries, consumer: "w", inline: true).count
            }
            #expect(rejected == flood)
            // MAXLEN ~ trims whole stream nodes (100 entries each): well under the flood, never all of it.
            let kept = try await queue.redis.send(["XLEN", queue.keys.dead]).int ?? 0
            #expect(kept > 0 && kept < 250, "dead letters kept: \(kept)")
            let events = try await queue.redis.send(["XLEN", queue.keys.events]).int ?? 0
            #expect(events < 250, "events kept: \(events)")
        }
    }

    @Test("the index of job ids keeps the newest, however many jobs are enqueued (by the API or a plain XADD)")
    func jobIndexIsCapped() async throws {
        try await withRedis { redis in
            let queue = JobQueue(redis: redis.client(), indexMaxLength: 5)
            try await queue.ensureGroups()
            let ids = try await queue.enqueueNoops(count: 40)
            #expect(try await queue.redis.send(["ZCARD", queue.keys.index]).int == 5)
            let listed = try await queue.redis.send(["ZRANGE", queue.keys.index, "0", "-1"]).array?.compactMap(\.text) ?? []
            // The newest by creation time (jobs created in the same millisecond tie; any of them may stay).
            #expect(Set(listed).isSubset(of: Set(ids)), "\(listed)")
            for _ in 0..<10 {
                _ = try await queue.redis.send(["XADD", queue.keys.stream(.high), "*", "job", #"{"kind":"noop"}"#])
            }
            var taken = 0
            while taken < 50 {
                let deliveries = try await queue.fetch(consumer: "w", count: 50, block: 0.2)
                if deliveries.isEmpty { break }
                taken += try await queue.start(deliveries, consumer: "w", inline: true).count
            }
            #expect(try await queue.redis.send(["ZCARD", queue.keys.index]).int == 5)
        }
    }
}
