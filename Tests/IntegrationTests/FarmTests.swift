import Foundation
import Hummingbird
import Jobs
import Testing
import Vault

/// A redis-server, a store and `streamgate worker` processes, all in one temporary folder.
final class FarmHarness: @unchecked Sendable {
    let folder: TemporaryFolder
    let redis: RedisServerProcess
    let queue: JobQueue
    var store: String { folder.path + "/store" }
    private var workers: [String: ChildProcess] = [:]
    private let lock = NSLock()

    init(appendOnly: Bool = false) throws {
        folder = try TemporaryFolder()
        redis = try RedisServerProcess(directory: "/tmp/sgf-" + String(UUID().uuidString.prefix(8)), appendOnly: appendOnly)
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

    /// Starts `streamgate farm --workers N`.
    func startFarm(workers: Int, lease: Double = 10) throws -> ChildProcess {
        let process = try ChildProcess(
            executable: streamgateBinary,
            arguments: [
                "farm", "--store", store, "--workers", String(workers), "--lease", String(lease), "--logs", folder.path + "/logs",
                "--profiles", packageRoot.appendingPathComponent("profiles").path,
            ],
            environment: environment, stdout: .file(folder.path + "/farm.log"), stderr: .file(folder.path + "/farm.log")
        )
        lock.lock()
        self.workers["farm"] = process
        lock.unlock()
        return process
    }

    /// Live workers, from their heartbeats: id → fields.
    func liveWorkers() async throws -> [String: [String: String]] {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let ids = try await queue.redis.send(["ZRANGEBYSCORE", queue.keys.workers, String(now - 5000), "+inf"]).array?.compactMap(\.text) ?? []
        var result: [String: [String: String]] = [:]
        for id in ids {
            let fields = try await queue.redis.send(["HGETALL", queue.keys.worker(id)]).fieldMap
            if !fields.isEmpty { result[id] = fields }
        }
        return result
    }

    func waitForWorkers(timeout: Double = 30, _ condition: ([String: [String: String]]) -> Bool) async throws -> [String: [String: String]] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let live = try await liveWorkers()
            if condition(live) { return live }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("workers did not reach the expected state: \(try await liveWorkers().keys.sorted())")
    }

    func log(_ id: String) -> String {
        (try? String(contentsOfFile: folder.path + "/\(id).log", encoding: .utf8)) ?? ""
    }

    /// Polls a job until `condition` holds or `timeout` passes.
    func wait(for id: String, timeout: Double = 60, until condition: (JobRecord) async throws -> Bool) async throws -> JobRecord {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let record = try await queue.job(id), try await condition(record) { return record }
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
    static var longClip: String {
        get async { await longClipTask.value }
    }

    private static let longClipTask = Task {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sg-long-\(getpid()).mp4").path
        if !FileManager.default.fileExists(atPath: path) {
            _ = try? await run("/usr/bin/ffmpeg", [
                "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=40",
                "-f", "lavfi", "-i", "sine=frequency=330:duration=40", "-c:v", "libx264", "-preset", "ultrafast",
                "-c:a", "aac", "-shortest", path,
            ])
        }
        return path
    }
}

@Suite("worker farm: real redis-server, real worker processes", .serialized)
struct FarmTests {
    static var fast: String { packageRoot.appendingPathComponent("profiles/fast.yaml").path }

    @Test("enqueue → succeeded, and the asset plays through serve", .tags(.endToEnd))
    func enqueueToPlayable() async throws {
        let farm = try FarmHarness()
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

        let server = try await RunningServer(store: farm.store)
        let play = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(server.baseURL)/v/farm-basic/master.m3u8", "-map", "0", "-f", "null", "-"])
        #expect(play.status == 0 && play.stderr.isEmpty, "\(play.stderr)")
    }

    @Test("kill -9 of a worker mid-transcode: reclaimed after the lease, finished once, the attempt it held given back", .tags(.endToEnd))
    func killedWorkerIsReclaimed() async throws {
        let farm = try FarmHarness()
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

    @Test("an upload whose job fails leaves nothing in the store's uploads", .tags(.endToEnd))
    func failedUploadLeavesNothing() async throws {
        let farm = try FarmHarness()
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
        #expect(!FileManager.default.fileExists(atPath: sealed), "the failed job's sealed upload was kept")
    }

    @Test("a job longer than its lease is never run twice while its worker lives", .tags(.endToEnd))
    func longJobNotRunTwice() async throws {
        let farm = try FarmHarness()
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

    @Test("a hang is killed at the time limit, retried, then dead-lettered", .tags(.endToEnd))
    func timeoutThenDead() async throws {
        let farm = try FarmHarness()
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

    @Test("runaway memory: the transcode dies under its limit, the worker lives, the job is retried then dead-lettered", .tags(.endToEnd))
    func memoryLimit() async throws {
        let farm = try FarmHarness()
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

    @Test("cancelling a running job stops it within 2 s and leaves nothing", .tags(.endToEnd))
    func cancelRunning() async throws {
        let farm = try FarmHarness()
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

    @Test("Redis restarted mid-run with the AOF on: no job is lost, each is published once", .tags(.endToEnd))
    func redisRestart() async throws {
        let farm = try FarmHarness(appendOnly: true)
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

    @Test("a job whose attempt published, then lost its worker before recording it, is not published twice", .tags(.endToEnd))
    func publishedThenWorkerDiedIsNotPublishedTwice() async throws {
        let farm = try FarmHarness()
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

    @Test("a store that cannot be written postpones jobs, attempts not spent, instead of failing or dead-lettering them", .tags(.endToEnd))
    func unwritableStorePostponesJobs() async throws {
        let farm = try FarmHarness()
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

    @Test("SIGTERM drains: the running job finishes, then the worker exits; twice releases it", .tags(.endToEnd))
    func drainAndRelease() async throws {
        let farm = try FarmHarness()
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

    @Test("scale up and down under load: draining workers finish their jobs; a killed worker is replaced", .tags(.endToEnd))
    func scaleUnderLoad() async throws {
        let farm = try FarmHarness()
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

/// An HTTP server in the test process that records webhook deliveries; it answers 500 to the first
/// `failFirst` requests, and 302 to `redirectTo` when given.
final class WebhookReceiver: @unchecked Sendable {
    struct Delivery {
        /// Lowercased header names.
        var headers: [String: String]
        var body: [UInt8]
        /// The Host header.
        var authority: String? = nil
    }

    let port: Int
    private let lock = NSLock()
    private var received: [Delivery] = []
    private var failuresLeft: Int
    private var listening = false
    private var task: Task<Void, Error>?

    init(failFirst: Int = 0, redirectTo: String? = nil) throws {
        port = try freePort()
        failuresLeft = failFirst
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let status: HTTPResponse.Status = self.record(Delivery(
                headers: Dictionary(request.headers.map { ($0.name.canonicalName, $0.value) }, uniquingKeysWith: { first, _ in first }),
                body: Array(buffer: body), authority: request.head.authority
            ))
            if let redirectTo { return Response(status: .found, headers: [.location: redirectTo]) }
            return Response(status: status)
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { _ in self.markListening() }
        )
        task = Task { try await app.run() }
    }

    private func markListening() {
        lock.lock(); defer { lock.unlock() }
        listening = true
    }

    private var isListening: Bool {
        lock.lock(); defer { lock.unlock() }
        return listening
    }

    /// Waits until the server accepts connections.
    func ready() async throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if isListening { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("the webhook receiver did not start")
    }

    deinit { task?.cancel() }

    var url: String { "http://127.0.0.1:\(port)/hook" }

    private func record(_ delivery: Delivery) -> HTTPResponse.Status {
        lock.lock(); defer { lock.unlock() }
        received.append(delivery)
        if failuresLeft > 0 {
            failuresLeft -= 1
            return .internalServerError
        }
        return .noContent
    }

    var deliveries: [Delivery] {
        lock.lock(); defer { lock.unlock() }
        return received
    }
}

@Suite("webhooks", .serialized)
struct WebhookTests {
    @Test("state changes reach the callback URL signed; a failed delivery is retried", .tags(.endToEnd))
    func signedAndRetried() async throws {
        let secret = "whsec-test-0123456789abcdef"
        let receiver = try WebhookReceiver(failFirst: 1)
        let farm = try FarmHarness()
        // The receiver is on loopback: the worker and the queue must allow it explicitly.
        let worker = try ChildProcess(
            executable: streamgateBinary,
            arguments: [
                "worker", "--store", farm.store, "--id", "hooked", "--profiles", packageRoot.appendingPathComponent("profiles").path,
                "--webhook-allow", "127.0.0.1",
            ],
            environment: farm.environment.merging(["STREAMGATE_WEBHOOK_SECRET": secret]) { $1 },
            stdout: .file(farm.folder.path + "/hooked.log"), stderr: .file(farm.folder.path + "/hooked.log")
        )
        defer { worker.terminate(grace: 5) }
        let queue = JobQueue(redis: farm.queue.redis, callbackPolicy: try OutboundAddressPolicy(allowing: ["127.0.0.1"]))
        let id = try await queue.enqueue(JobSpec(
            source: packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, profile: "fast", assetID: "hooked",
            callbackURL: receiver.url
        )).jobID
        _ = try await farm.wait(for: id) { $0.state.isTerminal }

        // running (refused once, then retried) and succeeded.
        let deadline = Date().addingTimeInterval(30)
        while receiver.deliveries.count < 3, Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let deliveries = receiver.deliveries
        #expect(deliveries.count == 3, "\(deliveries.map { String(decoding: $0.body, as: UTF8.self) })")
        var events: [String] = []
        for delivery in deliveries {
            let header = try #require(delivery.headers["streamgate-signature"])
            let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").map { part -> (String, String) in
                let pair = part.split(separator: "=", maxSplits: 1)
                return (String(pair[0]), String(pair[1]))
            })
            let timestamp = try #require(parts["t"].flatMap { Int($0) })
            #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 120)
            let expected = Digest.hex(Digest.hmacSHA256(key: Array(secret.utf8), message: Array("\(timestamp).".utf8) + delivery.body))
            #expect(parts["v1"] == expected, "the signature verifies")
            let wrongKey = Digest.hex(Digest.hmacSHA256(key: Array("another".utf8), message: Array("\(timestamp).".utf8) + delivery.body))
            #expect(parts["v1"] != wrongKey)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(delivery.body)) as? [String: Any])
            #expect(object["job_id"] as? String == id)
            events.append(try #require(object["type"] as? String))
            #expect(delivery.headers["streamgate-event"] == object["type"] as? String)
        }
        #expect(events == ["job.running", "job.running", "job.succeeded"])
        #expect(deliveries[0].headers["streamgate-delivery"] == deliveries[1].headers["streamgate-delivery"],
                "a retry is the same delivery")
        let final = try JSONSerialization.jsonObject(with: Data(deliveries[2].body)) as? [String: Any]
        #expect(final?["playback_path"] as? String == "/v/hooked/master.m3u8")
    }
}
