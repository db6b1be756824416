import Foundation
import Jobs
import TestSupport
import Testing
import Processes

/// `dev` and `farm` leave nothing running when they die, however they die: every child they start
/// (redis-server, workers, their transcodes) dies with them, and nothing keeps their port.
@Suite("process lifetimes: nothing outlives dev or farm")
struct ProcessLifetimeTests {
    @Test("dev killed with SIGKILL: its redis-server and workers die, and its port is free at once", .tags(.endToEnd))
    func devLeavesNothingRunning() async throws {
        let folder = try TemporaryFolder()
        let port = try freePort()
        let dev = try ChildProcess(
            executable: streamgateBinary,
            arguments: ["dev", "--data", folder.path + "/data", "--port", String(port), "--workers", "2", "--no-chain",
                        "--profiles", packageRoot.appendingPathComponent("profiles").path],
            environment: streamgateEnvironment(masterKey: nil), stdout: .file(folder.path + "/dev.log"), stderr: .file(folder.path + "/dev.log")
        )
        defer { dev.signal(SIGKILL) }
        // Up: the port answers and the workers have started.
        let deadline = Date().addingTimeInterval(60)
        var children: [pid_t] = []
        while Date() < deadline {
            children = descendants(of: dev.pid)
            if LoopbackListener.canConnect(port: port), children.count >= 3 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(LoopbackListener.canConnect(port: port), "dev did not open its port: \(String(decoding: FileManager.default.contents(atPath: folder.path + "/dev.log") ?? Data(), as: UTF8.self).suffix(2000))")
        #expect(children.count >= 3, "redis-server and two workers: \(children)")

        dev.signal(SIGKILL)
        _ = await dev.exited(timeout: 5)
        let gone = await allGone(children, within: 10)
        #expect(gone.isEmpty, "still running after dev died: \(gone.map(commandLine))")
        #expect(!LoopbackListener.canConnect(port: port), "dev's port is still accepting connections")
    }

    @Test("farm killed with SIGKILL: its workers die with it", .tags(.endToEnd))
    func farmLeavesNothingRunning() async throws {
        try await withFarm { farm in
            let process = try farm.startFarm(workers: 2)
            defer { process.signal(SIGKILL) }
            let deadline = Date().addingTimeInterval(60)
            var workers: [pid_t] = []
            while Date() < deadline {
                workers = descendants(of: process.pid)
                if workers.count >= 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(workers.count >= 2, "\(workers)")
            process.signal(SIGKILL)
            _ = await process.exited(timeout: 5)
            let gone = await allGone(workers, within: 10)
            #expect(gone.isEmpty, "still running after the farm died: \(gone.map(commandLine))")
        }
    }

    /// The processes whose ancestry leads to `root`, from /proc.
    func descendants(of root: pid_t) -> [pid_t] {
        var parents: [pid_t: pid_t] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { continue }
            // After "(comm)": state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { parents[pid] = parent }
        }
        return parents.keys.filter { pid in
            var current = parents[pid]
            while let ancestor = current, ancestor > 1 {
                if ancestor == root { return true }
                current = parents[ancestor]
            }
            return false
        }.sorted()
    }

    /// The processes of `pids` still alive (not gone, not zombies) after `seconds`.
    func allGone(_ pids: [pid_t], within seconds: Double) async -> [pid_t] {
        let deadline = Date().addingTimeInterval(seconds)
        var alive = pids
        while true {
            alive = alive.filter { pid in
                guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
                    return false
                }
                return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
            }
            if alive.isEmpty || Date() >= deadline { return alive }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    func commandLine(_ pid: pid_t) -> String {
        let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return "\(pid): " + String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }
}
