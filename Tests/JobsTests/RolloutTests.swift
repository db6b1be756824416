import Foundation
import TestSupport
import Testing
@testable import Jobs

@Suite("rollout verdict: canary against stable")
struct RolloutVerdictTests {
    static func track(succeeded: Int, failed: Int = 0, retried: Int = 0, dead: Int = 0, media: Double = 0, wall: Double = 0) -> TrackOutcomes {
        var track = TrackOutcomes()
        track.started = succeeded + failed + retried + dead
        track.succeeded = succeeded
        track.failed = failed
        track.retried = retried
        track.dead = dead
        track.mediaSeconds = media
        track.wallSeconds = wall
        track.timed = media > 0 ? succeeded : 0
        return track
    }

    let criteria = RolloutCriteria(minAttempts: 20, maxFailureDelta: 0.02, minSpeedRatio: 0.9)

    @Test("too few canary attempts: wait, exit 3")
    func waitsForAttempts() {
        let judgement = RolloutJudgement.judge(canary: Self.track(succeeded: 5), stable: Self.track(succeeded: 100), criteria: criteria)
        #expect(judgement.verdict == .wait && judgement.verdict.exitCode == 3)
        #expect(judgement.reasons.first?.contains("5 of the 20") == true, "\(judgement.reasons)")
    }

    @Test("matching failure ratios and speeds: promote, exit 0")
    func promotes() {
        let judgement = RolloutJudgement.judge(
            canary: Self.track(succeeded: 49, failed: 1, media: 500, wall: 100),
            stable: Self.track(succeeded: 490, failed: 10, media: 5000, wall: 980), criteria: criteria
        )
        #expect(judgement.verdict == .promote && judgement.verdict.exitCode == 0, "\(judgement.reasons)")
        #expect(abs((judgement.failureDelta ?? 1) - 0) < 1e-9)
        #expect(abs((judgement.speedRatio ?? 0) - 5.0 / (5000.0 / 980)) < 1e-9)
    }

    @Test("a canary failing more than the delta allows: rollback, exit 1, with the numbers")
    func rollsBackOnFailures() {
        let judgement = RolloutJudgement.judge(
            canary: Self.track(succeeded: 45, failed: 2, retried: 2, dead: 1), stable: Self.track(succeeded: 495, failed: 5), criteria: criteria
        )
        #expect(judgement.verdict == .rollback && judgement.verdict.exitCode == 1)
        #expect(abs((judgement.failureDelta ?? 0) - 0.09) < 1e-9)
        let reason = judgement.reasons.joined()
        #expect(reason.contains("10.0 %") && reason.contains("5/50") && reason.contains("1.0 %") && reason.contains("9.0 points"), "\(reason)")
    }

    @Test("exactly the allowed delta still promotes; a hair more rolls back")
    func deltaBoundary() {
        let stable = Self.track(succeeded: 100)
        #expect(RolloutJudgement.judge(canary: Self.track(succeeded: 98, failed: 2), stable: stable, criteria: criteria).verdict == .promote)
        #expect(RolloutJudgement.judge(canary: Self.track(succeeded: 97, failed: 3), stable: stable, criteria: criteria).verdict == .rollback)
    }

    @Test("a slower canary: rollback on the speed ratio")
    func rollsBackOnSpeed() {
        let judgement = RolloutJudgement.judge(
            canary: Self.track(succeeded: 30, media: 300, wall: 200), stable: Self.track(succeeded: 300, media: 3000, wall: 1000), criteria: criteria
        )
        #expect(judgement.verdict == .rollback)
        #expect(abs((judgement.speedRatio ?? 0) - 0.5) < 1e-9)
        #expect(judgement.reasons.joined().contains("50.0 %"), "\(judgement.reasons)")
    }

    @Test("no media transcoded (no-op jobs): speed is not compared")
    func speedUnknown() {
        let judgement = RolloutJudgement.judge(canary: Self.track(succeeded: 30), stable: Self.track(succeeded: 300), criteria: criteria)
        #expect(judgement.verdict == .promote && judgement.speedRatio == nil)
        #expect(judgement.reasons.contains { $0.contains("speed not compared") })
    }

    @Test("a canary that cannot recover is rolled back before min-attempts")
    func earlyRollback() {
        let stable = Self.track(succeeded: 200, failed: 2)
        #expect(RolloutJudgement.judge(canary: Self.track(succeeded: 3), stable: stable, criteria: criteria).verdict == .wait)
        // 1 failure in 3 with 20 needed: at best 1/20 = 5 %, 4 points above stable's 1 %, already past the 2 allowed.
        #expect(RolloutJudgement.judge(canary: Self.track(succeeded: 2, failed: 1), stable: stable, criteria: criteria).verdict == .rollback)
        let judgement = RolloutJudgement.judge(canary: Self.track(succeeded: 0, failed: 3), stable: stable, criteria: criteria)
        #expect(judgement.verdict == .rollback, "\(judgement.reasons)")
        #expect(judgement.reasons.joined().contains("3 of 3"))
    }

    @Test("without stable attempts the canary is held to no failures")
    func noBaseline() {
        let criteria = RolloutCriteria(minAttempts: 2, maxFailureDelta: 0.02, minSpeedRatio: 0.9)
        #expect(RolloutJudgement.judge(canary: Self.track(succeeded: 5), stable: TrackOutcomes(), criteria: criteria).verdict == .promote)
        let judgement = RolloutJudgement.judge(canary: Self.track(succeeded: 4, failed: 1), stable: TrackOutcomes(), criteria: criteria)
        #expect(judgement.verdict == .rollback && judgement.reasons.joined().contains("no attempts"), "\(judgement.reasons)")
    }

    @Test("the counters are read from a rollout hash by track")
    func readsFields() {
        let record = RolloutRecord(fields: [
            "id": "w1", "share": "0.25", "canary:started": "4", "canary:succeeded": "3", "canary:failed": "1", "canary:media_s": "10.5",
            "canary:wall_s": "2.5", "canary:timed": "3", "stable:started": "12", "stable:retry": "2", "stable:dead": "1", "stable:postpone": "1",
        ])
        #expect(record?.share == 0.25 && record?.canary.started == 4 && record?.canary.failures == 1)
        #expect(record?.canary.speed == 4.2 && record?.stable.failures == 3 && record?.stable.postponed == 1)
        #expect(RolloutRecord(fields: [:]) == nil)
    }
}

@Suite("rollout on Redis: canary slots and per-track counters")
struct RolloutQueueTests {
    /// Takes and starts one job as `consumer` on `track`.
    static func startOne(_ test: TestQueue, _ consumer: String, track: WorkerTrack, reserved: String? = nil) async throws -> Lease {
        let delivery = try #require(try await test.blocking.fetch(consumer: consumer, count: 1, block: 0.5).first)
        return try #require(try await test.queue.start([delivery], consumer: consumer, track: track, reserved: reserved).first?.lease)
    }

    static func enqueue(_ test: TestQueue, _ count: Int) async throws {
        _ = try await test.queue.enqueue(batch: (0..<count).map { _ in JobSpec(source: "/media/in.mp4", profile: "fast") })
    }

    @Test("no rollout: a canary may take everything, and nothing is counted")
    func noRollout() async throws {
        try await withQueue { test in
            #expect(try await test.queue.takeCanarySlots(wanted: 3) == CanarySlots(state: .none, count: 3, window: nil))
            try await Self.enqueue(test, 1)
            let lease = try await Self.startOne(test, "c1", track: .canary)
            let fields = try await test.queue.redis.send(["HGETALL", test.queue.keys.job(lease.jobID)]).fieldMap
            #expect(fields["track"] == "canary" && fields["rollout"] == nil)
            #expect(try await test.queue.finish(lease, .succeeded(version: nil)))
            #expect(try await test.queue.rollout() == nil)
        }
    }

    @Test("share 0.25: the canary gets a slot for every three stable starts, counted once, and outcomes by track")
    func share() async throws {
        try await withQueue { test in
            let started = try await test.queue.startRollout(share: 0.25, canaryVersion: "v2")
            #expect(started.canaryVersion == "v2" && started.share == 0.25)
            await #expect(throws: RolloutError.alreadyRunning(started.id)) { try await test.queue.startRollout(share: 0.5) }
            #expect(try await test.queue.takeCanarySlots(wanted: 1).count == 0, "nothing started yet: 1/1 is over the share")
            try await Self.enqueue(test, 5)
            var stable: [Lease] = []
            for _ in 0..<3 { stable.append(try await Self.startOne(test, "s1", track: .stable)) }
            let slots = try await test.queue.takeCanarySlots(wanted: 2)
            #expect(slots.state == .active && slots.count == 1 && slots.window == started.id)
            #expect(try await test.queue.takeCanarySlots(wanted: 1).count == 0, "the reserved slot counts already")
            let canary = try await Self.startOne(test, "c1", track: .canary, reserved: slots.window)
            try await test.queue.giveBackCanarySlots(slots, used: 1)
            var record = try #require(try await test.queue.rollout())
            #expect(record.canary.started == 1 && record.stable.started == 3, "\(record)")

            #expect(try await test.queue.finish(canary, .failed("bad input"), timing: AttemptTiming(mediaSeconds: 10, wallSeconds: 4)))
            #expect(try await test.queue.finish(canary, .failed("bad input")), "sent again: recorded")
            #expect(try await test.queue.finish(stable[0], .succeeded(version: "v"), timing: AttemptTiming(mediaSeconds: 10, wallSeconds: 2)))
            #expect(try await test.queue.finish(stable[1], .retry("crashed", at: 0)))
            #expect(try await test.queue.finish(stable[2], .postpone("disk full", at: 0)))
            record = try #require(try await test.queue.rollout())
            #expect(record.canary.failed == 1 && record.canary.judged == 1 && record.canary.speed == 2.5, "counted once: \(record.canary)")
            #expect(record.stable.succeeded == 1 && record.stable.retried == 1 && record.stable.postponed == 1 && record.stable.speed == 5)
        }
    }

    @Test("unused slots go back; concurrent canaries never take more than the share between them")
    func concurrentCanaries() async throws {
        try await withQueue { test in
            _ = try await test.queue.startRollout(share: 0.25)
            try await Self.enqueue(test, 8)
            for _ in 0..<8 { _ = try await Self.startOne(test, "s1", track: .stable) }
            let unused = try await test.queue.takeCanarySlots(wanted: 1)
            #expect(unused.count == 1)
            try await test.queue.giveBackCanarySlots(unused, used: 0)
            #expect(try await test.queue.rollout()?.canary.started == 0)
            let queue = test.queue
            let granted = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 { group.addTask { try await queue.takeCanarySlots(wanted: 1).count } }
                return try await group.reduce(0, +)
            }
            // c + g <= 0.25 (8 + g): g = 2.
            #expect(granted == 2)
            let record = try #require(try await test.queue.rollout())
            #expect(record.canary.started == 2 && Double(record.canary.started) <= 0.25 * Double(record.canary.started + record.stable.started))
        }
    }

    @Test("set-share counts from the change; abort holds canaries; a new window ignores the old one's attempts")
    func shareChangesAndWindows() async throws {
        try await withQueue { test in
            let first = try await test.queue.startRollout(share: 0.25)
            try await Self.enqueue(test, 6)
            var leases: [Lease] = []
            for _ in 0..<3 { leases.append(try await Self.startOne(test, "s1", track: .stable)) }
            #expect(try await test.queue.setRolloutShare(0.5) == 0.25)
            #expect(try await test.queue.takeCanarySlots(wanted: 1).count == 0, "no start since the change")
            leases.append(try await Self.startOne(test, "s1", track: .stable))
            let slots = try await test.queue.takeCanarySlots(wanted: 4)
            #expect(slots.count == 1, "one stable start since the change: one canary slot at 0.5")
            try await test.queue.giveBackCanarySlots(slots, used: 0)

            let aborted = try await test.queue.endRollout(promoted: false)
            #expect(aborted.id == first.id && aborted.ended == "aborted" && aborted.stable.started == 4)
            #expect(try await test.queue.takeCanarySlots(wanted: 2) == CanarySlots(state: .held, count: 0, window: nil))
            await #expect(throws: RolloutError.notRunning) { try await test.queue.setRolloutShare(0.1) }

            let second = try await test.queue.startRollout(share: 1)
            #expect(try await test.queue.takeCanarySlots(wanted: 2).count == 2, "share 1: everything")
            #expect(try await test.queue.finish(leases[0], .succeeded(version: nil)))
            let record = try #require(try await test.queue.rollout())
            #expect(record.id == second.id && record.stable.succeeded == 0 && record.stable.started == 0, "the first window's attempt is not counted here")
            _ = try await test.queue.endRollout(promoted: true)
            #expect(try await test.queue.takeCanarySlots(wanted: 2).state == .none, "after a promote, canaries work as stable ones")
        }
    }

    @Test("no-op jobs finished inline are counted started and succeeded for their track")
    func inlineNoops() async throws {
        try await withQueue { test in
            _ = try await test.queue.startRollout(share: 0.5)
            _ = try await test.queue.enqueueNoops(count: 3)
            let deliveries = try await test.blocking.fetch(consumer: "s1", count: 3, block: 0.5)
            let decisions = try await test.queue.start(deliveries, consumer: "s1", inline: true, track: .stable)
            #expect(decisions.allSatisfy { if case .ranInline = $0 { true } else { false } })
            let record = try #require(try await test.queue.rollout())
            #expect(record.stable.started == 3 && record.stable.succeeded == 3 && record.canary.started == 0)
        }
    }
}
