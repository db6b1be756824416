import Foundation
import Jobs
import Testing

/// A redis-server, a store and `streamgate worker` processes, all in one temporary folder.
final class FarmHarness: @unchecked Sendable {
    let folder: TemporaryFolder
    let redis: RedisServerProcess
    let queue: JobQueue
    var store: String { folder.path + "/store" }
    private var workers: [String: ChildProcess] = [:]
    private let lock = NSLock()

    init() throws {
        folder = try TemporaryFolder()
        redis = try RedisServerProcess(directory: "/tmp/sgf-" + String(UUID().uuidString.prefix(8)), appendOnly: false)
        queue = JobQueue(redis: RedisClient(url: redis.url, connections: 2))
    }

    deinit {
        lock.lock()
        let running = workers.values
        lock.unlock()
        for worker in running { worker.terminate(grace: 2) }
        redis.stop()
        try? FileManager.default.removeItem(atPath: redis.directory)
    }

    var environment: [String: String] {
        var environment = streamgateEnvironment()
        environment["STREAMGATE_REDIS_URL"] = redis.urlString
        return environment
    }

    /// Starts `streamgate worker --id ID` with a short lease.
    @discardableResult
    func startWorker(_ id: String, lease: Double = 2, extra: [String] = []) throws -> ChildProcess {
        let worker = try ChildProcess(
            executable: streamgateBinary,
            arguments: [
                "worker", "--store", store, "--id", id, "--lease", String(lease),
                "--profiles", packageRoot.appendingPathComponent("profiles").path,
            ] + extra,
            environment: environment, stdout: .file(folder.path + "/\(id).log"), stderr: .file(folder.path + "/\(id).log")
        )
        lock.lock()
        workers[id] = worker
        lock.unlock()
        return worker
    }

    func log(_ id: String) -> String {
        (try? String(contentsOfFile: folder.path + "/\(id).log", encoding: .utf8)) ?? ""
    }

    /// Polls a job until `condition` holds or `timeout` passes.
    func wait(for id: String, timeout: Double = 60, until condition: (JobRecord) -> Bool) async throws -> JobRecord {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let record = try await queue.job(id), condition(record) { return record }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("job \(id) did not reach the expected state in \(timeout) s: \(String(describing: try await queue.job(id)))")
    }

    func versions(of asset: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: store + "/objects/\(asset)")) ?? []).sorted()
    }

    func staging() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: store + "/staging")) ?? []
    }

    /// A 40 s 720p clip: long enough to kill, cancel or time out a transcode in the middle.
    static let longClip: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sg-long-\(getpid()).mp4").path
        if !FileManager.default.fileExists(atPath: path) {
            _ = try? run("/usr/bin/ffmpeg", [
                "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=40",
                "-f", "lavfi", "-i", "sine=frequency=330:duration=40", "-c:v", "libx264", "-preset", "ultrafast",
                "-c:a", "aac", "-shortest", path,
            ])
        }
        return path
    }()
}

@Suite("worker farm: real redis-server, real worker processes", .serialized)
struct FarmTests {
    static var fast: String { packageRoot.appendingPathComponent("profiles/fast.yaml").path }

    @Test("enqueue → succeeded, and the asset plays through serve", .tags(.endToEnd))
    func enqueueToPlayable() async throws {
        let farm = try FarmHarness()
        try farm.startWorker("w1")
        let enqueue = try run(streamgateBinary, [
            "enqueue", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "--profile", "fast", "--wait",
            "--asset-id", "farm-basic",
        ], environment: farm.environment, timeout: 120)
        #expect(enqueue.status == 0, "\(enqueue.stderr)")
        #expect(enqueue.stdout.contains("/v/farm-basic/master.m3u8"), "\(enqueue.stdout)")
        let jobID = try #require(enqueue.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let record = try #require(try await farm.queue.job(jobID))
        #expect(record.state == .succeeded && record.attempts == 1 && record.version != nil)

        let server = try RunningServer(store: farm.store)
        let play = try run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(server.baseURL)/v/farm-basic/master.m3u8", "-map", "0", "-f", "null", "-"])
        #expect(play.status == 0 && play.stderr.isEmpty, "\(play.stderr)")
    }

    @Test("kill -9 of a worker mid-transcode: reclaimed after the lease, finished once, attempts = 2", .tags(.endToEnd))
    func killedWorkerIsReclaimed() async throws {
        let farm = try FarmHarness()
        let first = try farm.startWorker("doomed", lease: 2)
        let id = try await farm.queue.enqueue(JobSpec(source: FarmHarness.longClip, profile: Self.fast, assetID: "reclaimed")).jobID
        _ = try await farm.wait(for: id) { $0.state == .running && ($0.progress ?? 0) > 5 }
        first.signal(SIGKILL)
        _ = first.wait(timeout: 5)
        try farm.startWorker("rescuer", lease: 2)
        let record = try await farm.wait(for: id, timeout: 120) { $0.state.isTerminal }
        #expect(record.state == .succeeded, "\(record)")
        #expect(record.attempts == 2 && record.worker == "rescuer")
        #expect(farm.versions(of: "reclaimed").count == 1, "one published version: \(farm.versions(of: "reclaimed"))")
        #expect(farm.staging().isEmpty, "the killed attempt's staging is gone: \(farm.staging())")
        #expect(farm.log("rescuer").contains("reclaimed"))
    }

    @Test("a job longer than its lease is never run twice while its worker lives", .tags(.endToEnd))
    func longJobNotRunTwice() async throws {
        let farm = try FarmHarness()
        // A 1 s lease against a transcode of several seconds, with a second worker waiting to steal.
        try farm.startWorker("holder", lease: 1)
        let id = try await farm.queue.enqueue(JobSpec(source: FarmHarness.longClip, profile: Self.fast, assetID: "held")).jobID
        _ = try await farm.wait(for: id) { $0.state == .running }
        try farm.startWorker("thief", lease: 1)
        let record = try await farm.wait(for: id, timeout: 120) { $0.state.isTerminal }
        #expect(record.state == .succeeded && record.attempts == 1 && record.worker == "holder", "\(record)")
        #expect(!farm.log("thief").contains("reclaimed"))
        #expect(farm.versions(of: "held").count == 1)
    }

    @Test("a hang is killed at the time limit, retried, then dead-lettered", .tags(.endToEnd))
    func timeoutThenDead() async throws {
        let farm = try FarmHarness()
        try farm.startWorker("w1")
        let id = try await farm.queue.enqueue(JobSpec(
            source: FarmHarness.longClip, profile: Self.fast, assetID: "slow", maxAttempts: 2, timeoutSeconds: 0.5
        )).jobID
        // Retries back off from 5 s; promote them sooner by moving the due time.
        let record = try await farm.wait(for: id, timeout: 60) { record in
            if record.state == .retrying {
                _ = try? run("/usr/bin/redis-cli", ["-s", farm.redis.socketPath, "ZADD", farm.queue.keys.delayed, "0", id])
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

    @Test("cancelling a running job stops it within 2 s and leaves nothing", .tags(.endToEnd))
    func cancelRunning() async throws {
        let farm = try FarmHarness()
        try farm.startWorker("w1")
        let id = try await farm.queue.enqueue(JobSpec(source: FarmHarness.longClip, profile: Self.fast, assetID: "cancelled")).jobID
        _ = try await farm.wait(for: id) { $0.state == .running && ($0.progress ?? 0) > 1 }
        let asked = Date()
        let cancel = try run(streamgateBinary, ["jobs", "cancel", id], environment: farm.environment)
        #expect(cancel.stdout.contains("cancelling"), "\(cancel.stdout)")
        let record = try await farm.wait(for: id, timeout: 10) { $0.state.isTerminal }
        #expect(record.state == .cancelled)
        // From the request to the worker recording the end (the worker's clock is this machine's).
        let took = Double(try #require(record.finishedAt)) / 1000 - asked.timeIntervalSince1970
        #expect(took < 2, "took \(took) s")
        try await Task.sleep(for: .milliseconds(300))
        #expect(farm.staging().isEmpty && farm.versions(of: "cancelled").isEmpty)
    }

    @Test("SIGTERM drains: the running job finishes, then the worker exits; twice releases it", .tags(.endToEnd))
    func drainAndRelease() async throws {
        let farm = try FarmHarness()
        let worker = try farm.startWorker("w1")
        let finishing = try await farm.queue.enqueue(JobSpec(source: FarmHarness.longClip, profile: Self.fast, assetID: "drained")).jobID
        _ = try await farm.wait(for: finishing) { $0.state == .running }
        worker.signal(SIGTERM)
        let done = try await farm.wait(for: finishing, timeout: 120) { $0.state.isTerminal }
        #expect(done.state == .succeeded)
        #expect(await worker.exited(timeout: 10) == .exited(0))

        let second = try farm.startWorker("w2")
        let released = try await farm.queue.enqueue(JobSpec(source: FarmHarness.longClip, profile: Self.fast, assetID: "released")).jobID
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
