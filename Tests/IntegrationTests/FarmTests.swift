import Foundation
import Jobs
import TestSupport
import Testing
import Vault

@Suite("worker farm: real redis-server, real worker processes", .serialized)
struct FarmTests {
    static var fast: String { packageRoot.appendingPathComponent("profiles/fast.yaml").path }

    @Test("enqueue → succeeded, and the asset plays through serve", .tags(.endToEnd))
    func enqueueToPlayable() async throws {
        try await withFarm { farm in
            try farm.startWorker("w1")
            let enqueue = try await run(streamgateBinary, [
                "enqueue", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "--profile", "fast", "--wait",
                "--asset-id", "farm-basic",
            ], environment: farm.environment, timeout: 120)
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            #expect(enqueue.stdout.contains("/v/farm-basic/master.m3u8"), "\(enqueue.stdout)")
            let jobID = try #require(enqueue.stdout.split(separator: " ").dropFirst().first.map(String.init))
            let record = try #require(try await farm.queue.job(jobID))
            #expect(record.state == .succeeded && record.attempts == 1 && record.version != nil)

            try await withServe(store: farm.store) { server in
                let play = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(server.baseURL)/v/farm-basic/master.m3u8", "-map", "0", "-f", "null", "-"])
                #expect(play.status == 0 && play.stderr.isEmpty, "\(play.stderr)")
            }
        }
    }

    @Test("kill -9 of a worker mid-transcode: reclaimed after the lease, finished once, the attempt it held given back", .tags(.endToEnd))
    func killedWorkerIsReclaimed() async throws {
        try await withFarm { farm in
            let first = try farm.startWorker("doomed", lease: 2)
            let id = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: Self.fast, assetID: "reclaimed")).jobID
            _ = try await farm.wait(for: id) { $0.state == .running && ($0.progress ?? 0) > 5 }
            first.signal(SIGKILL)
            _ = first.wait(timeout: 5)
            try farm.startWorker("rescuer", lease: 2)
            let record = try await farm.wait(for: id, timeout: 120) { $0.state.isTerminal }
            #expect(record.state == .succeeded, "\(record)")
            #expect(record.attempts == 1 && record.worker == "rescuer", "\(record)")
            #expect(farm.versions(of: "reclaimed").count == 1, "one published version: \(farm.versions(of: "reclaimed"))")
            #expect(farm.staging().isEmpty, "the killed attempt's staging is gone: \(farm.staging())")
            #expect(farm.log("rescuer").contains("reclaimed"))
        }
    }

    @Test("an upload whose job fails leaves nothing in the store's uploads", .tags(.endToEnd))
    func failedUploadLeavesNothing() async throws {
        try await withFarm { farm in
            try FileManager.default.createDirectory(atPath: farm.store + "/uploads", withIntermediateDirectories: true)
            let sealed = farm.store + "/uploads/bad.sealed"
            let keyring = Keyring(current: try MasterKey(base64: testMasterKey, source: "test"))
            let writer = try SealedSourceWriter(path: sealed, keyring: keyring, uploadID: "bad")
            try writer.append(Array(try Data(contentsOf: packageRoot.appendingPathComponent("fixtures/bad/random.mp4"))))
            try writer.finish()
            try farm.startWorker("w1")
            let id = try await farm.queue.enqueue(JobSpec(source: sealed, profile: Self.fast, assetID: "bad", sourceEncrypted: true)).jobID
            let record = try await farm.wait(for: id, timeout: 60) { $0.state.isTerminal }
            #expect(record.state == .failed, "\(record)")
            // The worker removes the upload once the failure is recorded, so a moment after it.
            #expect(try await eventually(within: 10) { !FileManager.default.fileExists(atPath: sealed) }, "the failed job's sealed upload was kept")
        }
    }

    @Test("a job longer than its lease is never run twice while its worker lives", .tags(.endToEnd))
    func longJobNotRunTwice() async throws {
        try await withFarm { farm in
            // A 2 s lease against a transcode longer than that (renewed every ½ s), with a second
            // worker waiting to steal it.
            try farm.startWorker("holder", lease: 2)
            let id = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: Self.fast, assetID: "held")).jobID
            _ = try await farm.wait(for: id) { $0.state == .running }
            try farm.startWorker("thief", lease: 2)
            let record = try await farm.wait(for: id, timeout: 120) { $0.state.isTerminal }
            #expect(record.state == .succeeded && record.attempts == 1 && record.worker == "holder", "\(record)")
            let ran = Double((record.finishedAt ?? 0) - (record.startedAt ?? 0)) / 1000
            #expect(ran > 2, "the job outlived its lease (\(ran) s), or this proves nothing")
            #expect(!farm.log("thief").contains("reclaimed"))
            #expect(farm.versions(of: "held").count == 1)
        }
    }

    @Test("a hang is killed at the time limit, retried, then dead-lettered", .tags(.endToEnd))
    func timeoutThenDead() async throws {
        try await withFarm { farm in
            try farm.startWorker("w1")
            let id = try await farm.queue.enqueue(JobSpec(
                source: await FarmHarness.longClip, profile: Self.fast, assetID: "slow", maxAttempts: 2, timeoutSeconds: 0.5
            )).jobID
            // Retries back off from 5 s; promote them sooner by moving the due time.
            let record = try await farm.wait(for: id, timeout: 60) { record in
                if record.state == .retrying {
                    _ = try? await run("/usr/bin/redis-cli", ["-s", farm.redis.socketPath, "ZADD", farm.queue.keys.delayed, "0", id])
                }
                return record.state.isTerminal
            }
            #expect(record.state == .dead, "\(record)")
            #expect(record.error?.contains("timed out") == true, "\(record.error ?? "")")
            #expect(record.attempts == 2)
            let letter = try await farm.queue.deadLetters().first
            #expect(letter?.fields["job"] == id)
            #expect(farm.versions(of: "slow").isEmpty && farm.staging().isEmpty)
        }
    }

    @Test("runaway memory: the transcode dies under its limit, the worker lives, the job is retried then dead-lettered", .tags(.endToEnd))
    func memoryLimit() async throws {
        try await withFarm { farm in
            let worker = try farm.startWorker("capped", extra: ["--memory-limit-mib", "150"])
            let id = try await farm.queue.enqueue(JobSpec(
                source: await FarmHarness.longClip, profile: Self.fast, assetID: "hungry", maxAttempts: 2
            )).jobID
            let record = try await farm.wait(for: id, timeout: 120) { record in
                if record.state == .retrying {
                    _ = try? await run("/usr/bin/redis-cli", ["-s", farm.redis.socketPath, "ZADD", farm.queue.keys.delayed, "0", id])
                }
                return record.state.isTerminal
            }
            #expect(record.state == .dead && record.attempts == 2, "\(record)")
            let reason = record.error ?? ""
            #expect(reason.contains("gave up after 2 attempts"), "\(reason)")
            #expect(reason.contains("signal") || reason.contains("memory"), "says how the transcode died: \(reason)")
            #expect(worker.isRunning, "the worker survived its transcode")
            #expect(try await farm.liveWorkers()["capped"] != nil, "and still heartbeats")
            #expect(farm.staging().isEmpty && farm.versions(of: "hungry").isEmpty)
        }
    }

    @Test("cancelling a running job stops it within 2 s and leaves nothing", .tags(.endToEnd))
    func cancelRunning() async throws {
        try await withFarm { farm in
            try farm.startWorker("w1")
            let id = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: Self.fast, assetID: "cancelled")).jobID
            _ = try await farm.wait(for: id) { $0.state == .running && ($0.progress ?? 0) > 1 }
            let asked = Date()
            let cancel = try await run(streamgateBinary, ["jobs", "cancel", id], environment: farm.environment)
            #expect(cancel.stdout.contains("cancelling"), "\(cancel.stdout)")
            let record = try await farm.wait(for: id, timeout: 10) { $0.state.isTerminal }
            #expect(record.state == .cancelled)
            // From the request to the worker recording the end (the worker's clock is this machine's).
            let took = Double(try #require(record.finishedAt)) / 1000 - asked.timeIntervalSince1970
            #expect(took < 2, "took \(took) s")
            try await Task.sleep(for: .milliseconds(300))
            #expect(farm.staging().isEmpty && farm.versions(of: "cancelled").isEmpty)
        }
    }

    @Test("Redis restarted mid-run with the AOF on: no job is lost, each is published once", .tags(.endToEnd))
    func redisRestart() async throws {
        try await withFarm(appendOnly: true) { farm in
            try farm.startWorker("w1")
            let basic = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path
            var ids = [try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: Self.fast, assetID: "restart-long")).jobID]
            for index in 0..<4 {
                ids.append(try await farm.queue.enqueue(JobSpec(source: basic, profile: Self.fast, assetID: "restart-\(index)")).jobID)
            }
            _ = try await farm.wait(for: ids[0]) { $0.state == .running && ($0.progress ?? 0) > 5 }
            try await Task.sleep(for: .milliseconds(1100))  // appendfsync everysec
            try farm.redis.restart()
            _ = try? await farm.queue.redis.send(["PING"])
            for id in ids {
                let record = try await farm.wait(for: id, timeout: 180) { $0.state.isTerminal }
                #expect(record.state == .succeeded, "\(record)")
            }
            for index in 0..<4 { #expect(farm.versions(of: "restart-\(index)").count == 1) }
            #expect(farm.versions(of: "restart-long").count == 1)
        }
    }

    @Test("a job whose attempt published, then lost its worker before recording it, is not published twice", .tags(.endToEnd))
    func publishedThenWorkerDiedIsNotPublishedTwice() async throws {
        try await withFarm { farm in
            let basic = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path
            let jobID = "published-then-killed"
            // What the earlier attempt left behind: the asset published by this job's transcode child,
            // and the job still unrecorded in Redis (its worker was SIGKILLed in between).
            let earlier = try await run(streamgateBinary, [
                "transcode", basic, "--profile", Self.fast, "--out", farm.store, "--asset-id", "once", "--publisher", jobID, "--quiet",
            ], environment: farm.environment, timeout: 120)
            #expect(earlier.status == 0, "\(earlier.stderr)")
            let published = farm.versions(of: "once")
            #expect(published.count == 1)
            try farm.startWorker("w1")
            let id = try await farm.queue.enqueue(JobSpec(id: jobID, source: basic, profile: Self.fast, assetID: "once")).jobID
            let record = try await farm.wait(for: id, timeout: 120) { $0.state.isTerminal }
            #expect(record.state == .succeeded && record.version == published.first, "\(record)")
            #expect(farm.versions(of: "once") == published, "one version: \(farm.versions(of: "once"))")
            #expect(farm.log("w1").contains("already published by an earlier attempt"))
        }
    }

    @Test("a store that cannot be written postpones jobs, attempts not spent, instead of failing or dead-lettering them", .tags(.endToEnd))
    func unwritableStorePostponesJobs() async throws {
        try await withFarm { farm in
            let basic = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path
            // The store's staging folder is a file: every transcode fails on the store, as on a full disk.
            try FileManager.default.createDirectory(atPath: farm.store, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: farm.store + "/staging", contents: Data("in the way".utf8)))
            try farm.startWorker("w1")
            let id = try await farm.queue.enqueue(JobSpec(source: basic, profile: Self.fast, assetID: "postponed", maxAttempts: 1)).jobID
            let waiting = try await farm.wait(for: id, timeout: 60) { $0.state == .retrying || $0.state.isTerminal }
            #expect(waiting.state == .retrying && waiting.attempts == 0, "\(waiting)")
            #expect(waiting.error?.contains("staging") == true, "says what failed: \(waiting.error ?? "")")
            #expect(farm.log("w1").contains("the store failed"))

            // The store is repaired; the postponed job runs (now, rather than after its backoff).
            try FileManager.default.removeItem(atPath: farm.store + "/staging")
            _ = try await run("/usr/bin/redis-cli", ["-s", farm.redis.socketPath, "ZADD", farm.queue.keys.delayed, "0", id])
            let record = try await farm.wait(for: id, timeout: 120) { $0.state.isTerminal }
            #expect(record.state == .succeeded && record.attempts == 1, "\(record)")
            #expect(farm.versions(of: "postponed").count == 1)
        }
    }

    @Test("SIGTERM drains: the running job finishes, then the worker exits; twice releases it", .tags(.endToEnd))
    func drainAndRelease() async throws {
        try await withFarm { farm in
            let worker = try farm.startWorker("w1")
            let finishing = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: Self.fast, assetID: "drained")).jobID
            _ = try await farm.wait(for: finishing) { $0.state == .running }
            worker.signal(SIGTERM)
            let done = try await farm.wait(for: finishing, timeout: 120) { $0.state.isTerminal }
            #expect(done.state == .succeeded)
            #expect(await worker.exited(timeout: 10) == .exited(0))

            let second = try farm.startWorker("w2")
            let released = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: Self.fast, assetID: "released")).jobID
            _ = try await farm.wait(for: released) { $0.state == .running }
            second.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(200))
            second.signal(SIGTERM)
            let back = try await farm.wait(for: released, timeout: 10) { $0.state == .queued }
            #expect(back.attempts == 0, "a released attempt is not counted")
            #expect(await second.exited(timeout: 10) == .exited(0))
            #expect(farm.staging().isEmpty)
        }
    }

    @Test("scale up and down under load: draining workers finish their jobs; a killed worker is replaced", .tags(.endToEnd))
    func scaleUnderLoad() async throws {
        try await withFarm { farm in
            let supervisor = try farm.startFarm(workers: 1)
            _ = try await farm.waitForWorkers { $0.count == 1 }
            var ids: [String] = []
            for index in 0..<3 {
                ids.append(try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: Self.fast, assetID: "scaled-\(index)")).jobID)
            }
            let scaleUp = try await run(streamgateBinary, ["scale", "3"], environment: farm.environment)
            #expect(scaleUp.stdout.contains("3 workers (was 1)"), "\(scaleUp.stdout)\(scaleUp.stderr)")
            // Three workers, each running one of the jobs.
            _ = try await farm.waitForWorkers(timeout: 60) { live in
                live.count == 3 && live.values.filter { !($0["jobs"] ?? "").isEmpty }.count == 3
            }
            _ = try await run(streamgateBinary, ["scale", "1"], environment: farm.environment)
            // Two drain: they finish their jobs, then only one worker is left.
            for id in ids {
                let record = try await farm.wait(for: id, timeout: 180) { $0.state.isTerminal }
                #expect(record.state == .succeeded && record.attempts == 1, "\(record)")
            }
            let remaining = try await farm.waitForWorkers(timeout: 30) { $0.count == 1 }

            // A worker killed outright is replaced.
            let victim = try #require(remaining.first)
            let pid = try #require(victim.value["pid"].flatMap { Int32($0) })
            kill(pid, SIGKILL)
            _ = try await farm.waitForWorkers(timeout: 30) { live in live.count == 1 && live.keys.first != victim.key }

            supervisor.signal(SIGTERM)
            #expect(await supervisor.exited(timeout: 30) == .exited(0))
            _ = try await farm.waitForWorkers(timeout: 15) { $0.isEmpty }
        }
    }
}
