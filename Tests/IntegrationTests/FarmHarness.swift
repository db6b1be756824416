import Foundation
import Jobs
import TestSupport
import Testing
import Processes

/// A redis-server, a store and `streamgate worker` processes, all in one temporary folder.
///
/// Made by ``withFarm(appendOnly:isolation:_:)``, which stops the processes, then Redis.
final class FarmHarness: @unchecked Sendable {
    let folder: TemporaryFolder
    let redis: RedisFixture
    let queue: JobQueue
    var store: String { folder.path + "/store" }
    private var workers: [String: ChildProcess] = [:]
    private let lock = NSLock()

    init(redis: RedisFixture) throws {
        folder = try TemporaryFolder()
        self.redis = redis
        queue = JobQueue(redis: redis.client(connections: 2))
    }

    /// Stops every worker and farm process started through the harness (SIGTERM, SIGKILL after 2 s).
    func stopProcesses() async {
        let running = lock.withLock { workers.values }
        _ = try? await offPool { for process in running { process.terminate(grace: 2) } }
    }

    var environment: [String: String] {
        var environment = streamgateEnvironment()
        environment["STREAMGATE_REDIS_URL"] = redis.urlString
        return environment
    }

    /// Starts `streamgate worker --id ID` with a short lease, on the harness's folder store unless
    /// `store` gives other store options (a bucket's).
    @discardableResult
    func startWorker(_ id: String, lease: Double = 2, store storeOptions: [String]? = nil, environment extraEnvironment: [String: String] = [:], extra: [String] = []) throws -> ChildProcess {
        let worker = try ChildProcess(
            executable: streamgateBinary,
            arguments: ["worker"] + (storeOptions ?? ["--store", store]) + [
                "--id", id, "--lease", String(lease),
                "--profiles", packageRoot.appendingPathComponent("profiles").path,
            ] + extra,
            environment: environment.merging(extraEnvironment) { $1 }, stdout: .file(folder.path + "/\(id).log"), stderr: .file(folder.path + "/\(id).log")
        )
        lock.lock()
        workers[id] = worker
        lock.unlock()
        return worker
    }

    /// Starts `streamgate farm --workers N`.
    func startFarm(workers: Int, lease: Double = 10, extra: [String] = []) throws -> ChildProcess {
        let process = try ChildProcess(
            executable: streamgateBinary,
            arguments: [
                "farm", "--store", store, "--workers", String(workers), "--lease", String(lease), "--logs", folder.path + "/logs",
                "--profiles", packageRoot.appendingPathComponent("profiles").path,
            ] + extra,
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

/// Runs `body` with a ``FarmHarness`` on a redis-server of its own; afterwards, whatever `body`
/// did, the workers it started are stopped, then Redis.
func withFarm<T>(
    appendOnly: Bool = false, isolation: isolated (any Actor)? = #isolation, _ body: (FarmHarness) async throws -> T
) async throws -> T {
    try await withRedis(RedisOptions(appendOnly: appendOnly)) { redis in
        let farm = try FarmHarness(redis: redis)
        return try await withCleanup { try await body(farm) } cleanup: { await farm.stopProcesses() }
    }
}
