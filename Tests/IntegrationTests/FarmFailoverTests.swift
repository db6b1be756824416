import Foundation
import Jobs
import Processes
import Redis
import TestSupport
import Testing

/// `streamgate farm` behind Sentinel with `--redis-wait-replicas 1`: its workers get the flags, and
/// ride a SIGKILL of the primary; every job whose enqueue was acknowledged is run, once.
@Suite("farm through a Sentinel failover", .serialized)
struct FarmFailoverTests {
    static let jobs = 40

    @Test("a farm's workers wait for a replica and carry on after the primary is killed", .tags(.endToEnd))
    func farmRidesAFailover() async throws {
        try await withSentinelRedis { ha in
            let folder = try TemporaryFolder()
            let farm = try ChildProcess(
                executable: streamgateBinary,
                arguments: [
                    "farm", "--store", folder.path + "/store", "--workers", "2", "--lease", "2", "--logs", folder.path + "/logs",
                    "--profiles", packageRoot.appendingPathComponent("profiles").path, "--redis", ha.urlString,
                    "--redis-wait-replicas", "1", "--redis-wait-timeout", "2s",
                ],
                environment: streamgateEnvironment(), stdout: .file(folder.path + "/farm.log"), stderr: .file(folder.path + "/farm.log")
            )
            try await withCleanup {
                let queue = JobQueue(redis: ha.client(connections: 2, timeout: 2, reconnectWindow: 20, waitReplicas: 1, waitTimeout: 2))
                let pids = try await Self.workerPIDs(queue, count: 2)
                for pid in pids {
                    // The farm handed its flags on: each worker's own command line has them.
                    let arguments = ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").split(separator: "\0").map(String.init)
                    let value = { (flag: String) in arguments.firstIndex(of: flag).map { arguments.index(after: $0) }.flatMap { arguments.indices.contains($0) ? arguments[$0] : nil } }
                    #expect(value("--redis-wait-replicas") == "1" && value("--redis-wait-timeout") == "2s", "worker \(pid): \(arguments)")
                }

                var acknowledged: [String] = []
                var refused = 0
                var killed = false
                while acknowledged.count < Self.jobs, refused < Self.jobs {
                    if !killed, acknowledged.count == Self.jobs / 2 {
                        try await offPool { ha.kill() }
                        killed = true
                    }
                    do { acknowledged.append(try await queue.enqueue(JobSpec(kind: .noop)).jobID) } catch { refused += 1 }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(acknowledged.count == Self.jobs, "\(refused) enqueues refused")
                #expect(ha.replicaPorts.contains(try await ha.failover(from: ha.primaryPort)))

                let deadline = Date().addingTimeInterval(40)
                var states: [String?] = []
                while Date() < deadline {
                    states = try await queue.redis.pipeline(acknowledged.map { ["HGET", queue.keys.job($0), "state"] }).map(\.text)
                    if states.allSatisfy({ $0 == "succeeded" }) { break }
                    try await Task.sleep(for: .milliseconds(200))
                }
                #expect(states.allSatisfy { $0 == "succeeded" }, "\(zip(acknowledged, states).filter { $0.1 != "succeeded" })")
                var succeeded: [String: Int] = [:]
                for entry in try await queue.redis.send(["XRANGE", queue.keys.events, "-", "+"]).array ?? [] {
                    guard let fields = entry.array?.last?.fieldMap, fields["state"] == "succeeded", let id = fields["job"] else { continue }
                    succeeded[id, default: 0] += 1
                }
                for id in acknowledged { #expect(succeeded[id] == 1, "job \(id) succeeded \(succeeded[id] ?? 0) times") }
            } cleanup: {
                // SIGTERM drains the workers; one that outstays 20 s is killed with its group.
                farm.signal(SIGTERM)
                if await farm.exited(timeout: 20) == nil { _ = try? await offPool { farm.terminate(grace: 1, group: true) } }
            }
        }
    }

    /// The pids of `count` live workers, from their heartbeats.
    static func workerPIDs(_ queue: JobQueue, count: Int) async throws -> [Int32] {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let ids = try await queue.redis.send(["ZRANGEBYSCORE", queue.keys.workers, String(now - 5000), "+inf"]).array?.compactMap(\.text) ?? []
            var pids: [Int32] = []
            for id in ids {
                if let pid = try await queue.redis.send(["HGET", queue.keys.worker(id), "pid"]).text.flatMap({ Int32($0) }) { pids.append(pid) }
            }
            if pids.count >= count { return pids }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("the farm's \(count) workers did not show up within 30 s")
    }
}
