import Foundation
import Jobs
import TestSupport
import Testing

@Suite("canary workers and rollouts: real redis-server, real worker processes", .serialized)
struct CanaryRolloutTests {
    static let basic = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path

    func rollout(_ farm: FarmHarness, _ arguments: [String]) async throws -> ProcessOutput {
        try await run(streamgateBinary, ["rollout"] + arguments, environment: farm.environment, timeout: 60)
    }

    /// Waits for every job to end, checking `during` on the rollout at each poll.
    func waitForAll(_ ids: [String], _ farm: FarmHarness, timeout: Double = 180, during: (RolloutRecord) -> Void = { _ in }) async throws -> [JobRecord] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let record = try await farm.queue.rollout() { during(record) }
            var records: [JobRecord] = []
            for id in ids { if let record = try await farm.queue.job(id), record.state.isTerminal { records.append(record) } }
            if records.count == ids.count { return records }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the jobs did not all end within \(timeout) s")
    }

    @Test("share 0.25: two stable workers and a canary; the canary stays within its share, every job succeeds, status says promote", .tags(.endToEnd))
    func canaryTakesItsShare() async throws {
        try await withFarm { farm in
            let start = try await rollout(farm, ["start", "--share", "0.25", "--canary-version", "v2", "--stable-version", "v1"])
            #expect(start.status == 0 && start.stdout.contains("25 %"), "\(start.stdout)\(start.stderr)")
            #expect(start.stderr.contains("no canary worker is running"), "\(start.stderr)")
            let early = try await rollout(farm, ["status"])
            #expect(early.status == 3 && early.stdout.contains("verdict: wait"), "\(early.stdout)\(early.stderr)")

            try farm.startWorker("stable-1")
            try farm.startWorker("stable-2")
            try farm.startWorker("canary-1", extra: ["--track", "canary"])
            let live = try await farm.waitForWorkers { $0.count == 3 }
            #expect(live["canary-1"]?["track"] == "canary" && live["stable-1"]?["track"] == "stable", "\(live)")
            let workers = try await run(streamgateBinary, ["workers"], environment: farm.environment)
            #expect(workers.stdout.contains("TRACK") && workers.stdout.split(separator: "\n").contains { $0.hasPrefix("canary-1") && $0.contains("canary") }, "\(workers.stdout)")

            let ids = try await farm.queue.enqueue(batch: (0..<16).map { JobSpec(source: Self.basic, profile: "fast", assetID: "share-\($0)") }).map(\.jobID)
            var samples = 0
            var overShare: [String] = []
            let records = try await waitForAll(ids, farm) { window in
                samples += 1
                // Reserved slots count as started, so the share holds at every instant, in flight included.
                let total = window.canary.started + window.stable.started
                if Double(window.canary.started) > 0.25 * Double(total) + 1e-9 { overShare.append("\(window.canary.started)/\(total)") }
            }
            #expect(records.allSatisfy { $0.state == .succeeded }, "\(records.map { "\($0.id) \($0.state) \($0.error ?? "")" })")
            #expect(overShare.isEmpty, "the canary went over its share at \(overShare) (of \(samples) samples)")
            let window = try #require(try await farm.queue.rollout())
            let byCanary = records.filter { $0.worker == "canary-1" }.count
            #expect(window.canary.started >= 1 && window.canary.succeeded == byCanary, "the canary took jobs: \(window.canary), \(byCanary) by canary-1")
            #expect(Double(window.canary.started) <= 0.25 * Double(window.canary.started + window.stable.started) + 1, "\(window)")
            #expect(window.canary.succeeded + window.stable.succeeded == 16 && window.canary.timed == byCanary && window.canary.mediaSeconds > 0)

            // Both tracks transcode the same clip on one machine; the floor leaves room for its noise.
            let status = try await rollout(farm, ["status", "--min-attempts", "1", "--min-speed-ratio", "0.3"])
            #expect(status.status == 0 && status.stdout.contains("verdict: promote"), "\(status.stdout)\(status.stderr)")
            #expect(status.stdout.contains("live workers: 1 canary, 2 stable"), "\(status.stdout)")
            let json = try await rollout(farm, ["status", "--min-attempts", "1", "--min-speed-ratio", "0.3", "--json"])
            let report = try JSONSerialization.jsonObject(with: json.stdoutData) as? [String: Any]
            #expect(report?["verdict"] as? String == "promote" && report?["speed_ratio"] is Double, "\(json.stdout)")
            let strict = try await rollout(farm, ["status", "--min-attempts", "100"])
            #expect(strict.status == 3 && strict.stdout.contains("verdict: wait"), "\(strict.stdout)")

            let promote = try await rollout(farm, ["promote"])
            #expect(promote.status == 0 && promote.stdout.contains("promoted") && promote.stdout.contains("set image deployment/streamgate-worker"), "\(promote.stdout)")
            #expect(try await farm.queue.rollout() == nil)
            #expect(try await farm.queue.lastRollout()?.ended == "promoted")
            let after = try await rollout(farm, ["status"])
            #expect(after.status == 4 && after.stdout.contains("no rollout is running"), "\(after.stdout)")
        }
    }

    @Test("with no rollout a canary takes jobs like any worker; farm --track canary reaches its workers", .tags(.endToEnd))
    func canaryWithoutRollout() async throws {
        try await withFarm { farm in
            _ = try farm.startFarm(workers: 1, extra: ["--track", "canary"])
            let live = try await farm.waitForWorkers { $0.values.contains { $0["track"] == "canary" } }
            let id = try #require(live.first { $0.value["track"] == "canary" }?.key)
            let ids = try await farm.queue.enqueueNoops(count: 4) + [
                try await farm.queue.enqueue(JobSpec(source: Self.basic, profile: "fast", assetID: "no-rollout")).jobID,
            ]
            let records = try await waitForAll(ids, farm, timeout: 120)
            #expect(records.allSatisfy { $0.state == .succeeded && $0.worker == id }, "\(records.map { "\($0.state) \($0.worker ?? "-")" })")
            #expect(try await farm.queue.rollout() == nil)
        }
    }

    @Test("a canary that fails its jobs: status says rollback (exit 1) with the numbers; abort stops it taking more", .tags(.endToEnd))
    func failingCanaryRollsBack() async throws {
        try await withFarm { farm in
            #expect(try await rollout(farm, ["start", "--share", "0.5"]).status == 0)
            let early = try await rollout(farm, ["status", "--min-attempts", "2", "--json"])
            let earlyReport = try JSONSerialization.jsonObject(with: early.stdoutData) as? [String: Any]
            #expect(early.status == 3 && earlyReport?["verdict"] as? String == "wait", "\(early.stdout)\(early.stderr)")

            // Its profile folder is empty: every transcode it takes fails ("unknown profile").
            let empty = farm.folder.path + "/no-profiles"
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            try farm.startWorker("stable-1")
            try farm.startWorker("canary-bad", extra: ["--track", "canary", "--profiles", empty])
            _ = try await farm.waitForWorkers { $0.count == 2 }
            let ids = try await farm.queue.enqueue(batch: (0..<10).map { JobSpec(source: Self.basic, profile: "fast", assetID: "bad-\($0)") }).map(\.jobID)
            let records = try await waitForAll(ids, farm)
            let failed = records.filter { $0.state == .failed }
            #expect(failed.count >= 2 && failed.allSatisfy { $0.worker == "canary-bad" && $0.error?.contains("unknown profile") == true }, "\(records.map { "\($0.state) \($0.worker ?? "-")" })")
            #expect(records.filter { $0.worker == "stable-1" }.allSatisfy { $0.state == .succeeded })

            let status = try await rollout(farm, ["status", "--min-attempts", "2"])
            #expect(status.status == 1, "\(status.stdout)\(status.stderr)")
            #expect(status.stdout.contains("verdict: rollback") && status.stdout.contains("canary failure ratio 100.0 %"), "\(status.stdout)")
            #expect(status.stdout.contains("(\(failed.count)/\(failed.count))") && status.stdout.contains("stable's 0.0 %"), "\(status.stdout)")
            let json = try await rollout(farm, ["status", "--min-attempts", "2", "--json"])
            let report = try JSONSerialization.jsonObject(with: json.stdoutData) as? [String: Any]
            #expect(json.status == 1 && report?["verdict"] as? String == "rollback" && report?["failure_delta"] as? Double == 1, "\(json.stdout)")

            let abort = try await rollout(farm, ["abort"])
            #expect(abort.status == 0 && abort.stdout.contains("scale deployment/streamgate-worker-canary --replicas 0"), "\(abort.stdout)")
            // Held: the canary takes nothing more, so nothing more fails.
            // (A read it began before the abort ends within its 1 s block.)
            try await Task.sleep(for: .seconds(2))
            let more = try await farm.queue.enqueue(batch: (0..<4).map { JobSpec(source: Self.basic, profile: "fast", assetID: "after-\($0)") }).map(\.jobID)
            let afterAbort = try await waitForAll(more, farm)
            #expect(afterAbort.allSatisfy { $0.state == .succeeded && $0.worker == "stable-1" }, "\(afterAbort.map { "\($0.state) \($0.worker ?? "-")" })")
            #expect(farm.log("canary-bad").contains("the last rollout was aborted"))
        }
    }
}
