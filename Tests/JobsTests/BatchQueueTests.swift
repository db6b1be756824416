import Foundation
import TestSupport
import Testing
@testable import Jobs

/// Jobs moved many to a script call: enqueued in bulk, and no-op jobs taken and finished in bulk.
@Suite("job queue batches")
struct BatchQueueTests {
    @Test("a batch enqueue makes one job per spec; a taken id is answered, not enqueued twice; one invalid spec refuses the batch")
    func batchEnqueue() async throws {
        try await withQueue { test in
            let first = try await test.queue.enqueue(JobSpec(id: "taken", source: "/a.mp4", assetID: "first-asset"))
            #expect(first.created)

            let specs = (0..<1_200).map { JobSpec(id: "batch-\($0)", kind: .noop, priority: $0 % 2 == 0 ? .high : .normal) }
                + [JobSpec(id: "taken", source: "/b.mp4"), JobSpec(source: "/c.mp4", idempotencyKey: "k1")]
            let answers = try await test.queue.enqueue(batch: specs)
            #expect(answers.count == specs.count)
            #expect(answers.prefix(1_200).allSatisfy { $0.created })
            #expect(answers[1_200] == .init(jobID: "taken", assetID: "first-asset", created: false), "the job already there")
            #expect(answers[1_201].created && answers[1_201].assetID != nil)
            #expect(try await test.queue.job("taken")?.spec?.source == "/a.mp4", "not overwritten")
            let record = try #require(try await test.queue.job("batch-7"))
            #expect(record.state == .queued && record.priority == .normal)
            let stats = try await test.queue.stats()
            #expect(stats.priorities["high"]?.length == 600 && stats.priorities["normal"]?.length == 602)
            #expect(try await test.queue.recentJobs(limit: 2_000).count == 1_202)

            // Refused before anything is written: no job of the batch exists afterwards.
            await #expect(throws: JobError.self) {
                try await test.queue.enqueue(batch: [JobSpec(id: "fine", kind: .noop), JobSpec(id: "bad", kind: .transcode)])
            }
            #expect(try await test.queue.job("fine") == nil)
        }
    }

    @Test("no-op jobs that are not simply queued take the general path inside a batch: a record is created, a superseded entry skipped, an exhausted job dead-lettered")
    func inlineBatchFallsBackPerJob() async throws {
        try await withQueue { test in
            let keys = test.queue.keys
            let ids = try await test.queue.enqueueNoops(count: 5)
            // A plain XADD: no record until a worker takes it.
            let plain = try await test.queue.redis.send(["XADD", keys.stream(.normal), "*", "job", #"{"kind":"noop"}"#]).text!
            // Its entry replaced (as a release or a retry would): the old entry is skipped.
            try await test.queue.redis.send(["HSET", keys.job(ids[1]), "entry", "0-1"])
            // Its attempts used up: dead-lettered, not run.
            try await test.queue.redis.send(["HSET", keys.job(ids[2]), "attempts", "3"])

            let deliveries = try await test.blocking.fetch(consumer: "w1", count: 10, block: 0.2)
            #expect(deliveries.count == 6)
            let decisions = try await test.queue.start(deliveries, consumer: "w1", inline: true)
            var byJob: [String: StartDecision] = [:]
            for (delivery, decision) in zip(deliveries, decisions) { byJob[delivery.spec?.id ?? delivery.entry] = decision }
            for id in [ids[0], ids[3], ids[4], plain] {
                guard case .ranInline(let job, let attempt, _)? = byJob[id] else { Issue.record("\(id): \(String(describing: byJob[id]))"); continue }
                #expect(job == id && attempt == 1)
                #expect(try await test.queue.job(id)?.state == .succeeded)
            }
            #expect(byJob[ids[1]] == .skip("superseded entry"))
            guard case .dead(let reason)? = byJob[ids[2]] else { Issue.record("\(String(describing: byJob[ids[2]]))"); return }
            #expect(reason.contains("gave up after 3 attempts"))
            #expect(try await test.queue.job(ids[2])?.state == .dead)
            #expect(try await test.queue.deadLetters().count == 1)

            let stats = try await test.queue.stats()
            #expect(stats.pending == 0 && stats.depth == 0, "every entry acknowledged and deleted")
            #expect(stats.totals["succeeded"] == 4 && stats.totals["dead"] == 1)
            let expiry = try await test.queue.redis.send(["TTL", keys.job(ids[0])]).int ?? -1
            #expect(expiry > 0, "a finished record expires after retention")
        }
    }
}
