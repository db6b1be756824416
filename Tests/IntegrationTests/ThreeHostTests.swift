import Foundation
import Jobs
import Processes
import Redis
import TestSupport
import Testing

/// Issue 14's proof: hosts that share nothing but the network. Redis and the S3 server (SeaweedFS)
/// on one host, a worker on a second, the origin on a third, each in a network namespace of its
/// own with a folder of its own; the upload goes through the origin, the worker transcodes it, and
/// ffmpeg plays it through the origin. The worker is killed mid-job and a worker on a fourth host
/// finishes it.
@Suite("three hosts sharing only the network (ip netns)", .serialized, .enabled(if: NetworkLab.available, "needs root and iproute2 to make network namespaces"))
struct ThreeHostTests {
    static let apiKey = "three-host-api-key-0123456789"

    @Test("upload through the origin on one host, transcode on another, kill it, finish on a fourth, play through the origin", .tags(.endToEnd))
    func uploadTranscodePlay() async throws {
        let folder = try TemporaryFolder()
        try await withNetworkLab { lab in
            let infra = try lab.addHost("infra"), first = try lab.addHost("work1"), second = try lab.addHost("work2"), edge = try lab.addHost("edge")
            for host in ["infra", "work1", "work2", "edge"] {
                try FileManager.default.createDirectory(atPath: "\(folder.path)/\(host)", withIntermediateDirectories: true)
            }
            try lab.start(on: infra, [
                "/usr/bin/redis-server", "--bind", infra.address, "--port", "6379", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--dir", "\(folder.path)/infra",
            ], environment: [:], log: "\(folder.path)/infra/redis.log")
            let s3 = try await S3ServerProcess.start(bucket: "media", host: infra.address, launcher: infra.launcher)
            try await withCleanup {
                let redisURL = "redis://\(infra.address):6379"
                var environment = streamgateEnvironment()
                environment["AWS_ACCESS_KEY_ID"] = S3ServerProcess.accessKeyID
                environment["AWS_SECRET_ACCESS_KEY"] = S3ServerProcess.secretAccessKey
                environment["STREAMGATE_API_KEYS"] = Self.apiKey
                environment["STREAMGATE_REDIS_URL"] = redisURL
                let store = ["--store", "s3://media/sg", "--s3-endpoint", s3.endpoint]
                func worker(_ id: String, on host: NetworkLab.Host) throws -> Processes.ChildProcess {
                    try lab.start(on: host, [
                        streamgateBinary, "worker", "--id", id, "--lease", "2", "--spool", "\(folder.path)/\(host.name)/spool",
                        "--profiles", packageRoot.appendingPathComponent("profiles").path,
                    ] + store, environment: environment, log: "\(folder.path)/\(host.name)/worker.log")
                }
                try lab.start(on: edge, [streamgateBinary, "serve", "--host", edge.address, "--port", "8080", "--redis", redisURL] + store,
                              environment: environment, log: "\(folder.path)/edge/serve.log")
                let origin = "http://\(edge.address):8080"
                try await Self.waitUntilReady(origin, log: "\(folder.path)/edge/serve.log")
                let doomed = try worker("doomed", on: first)

                // The upload crosses the network to the origin, which seals it into the bucket.
                let upload = try await run("/usr/bin/curl", [
                    "-s", "-f", "-H", "Authorization: Bearer \(Self.apiKey)", "--data-binary", "@" + (await FarmHarness.longClip),
                    "\(origin)/v1/uploads?profile=fast&asset_id=lab",
                ], timeout: 120)
                #expect(upload.status == 0, "\(upload.stderr) \(upload.stdout)")
                let answer = try JSONSerialization.jsonObject(with: Data(upload.stdout.utf8)) as? [String: Any]
                let id = try #require(answer?["job_id"] as? String, "\(upload.stdout)")

                let queue = JobQueue(redis: RedisClient(url: try RedisURL(redisURL), connections: 1))
                func wait(_ condition: (JobRecord) -> Bool, timeout: Double) async throws -> JobRecord {
                    let deadline = Date().addingTimeInterval(timeout)
                    while Date() < deadline {
                        if let record = try await queue.job(id), condition(record) { return record }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    throw TestFailure("job \(id): \(String(describing: try await queue.job(id)))")
                }
                _ = try await wait({ $0.state == .running && ($0.progress ?? 0) > 5 }, timeout: 90)
                doomed.signalGroup(SIGKILL)
                _ = doomed.wait(timeout: 5)
                _ = try worker("rescuer", on: second)
                let record = try await wait({ $0.state.isTerminal }, timeout: 240)
                let rescuerLog = (try? String(contentsOfFile: "\(folder.path)/work2/worker.log", encoding: .utf8)) ?? ""
                #expect(record.state == .succeeded && record.worker == "rescuer", "\(record)\n\(rescuerLog.suffix(2000))")

                let play = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(origin)/v/lab/master.m3u8", "-map", "0", "-f", "null", "-"], timeout: 180)
                #expect(play.status == 0 && play.stderr.isEmpty, "\(play.stderr)")
                // Each host wrote only into its own folder.
                for host in ["work1", "work2", "edge"] {
                    let files = (try? FileManager.default.subpathsOfDirectory(atPath: "\(folder.path)/\(host)")) ?? []
                    #expect(!files.contains { $0.hasSuffix(".ts") && !$0.contains("spool") }, "\(host): \(files)")
                }
            } cleanup: {
                await s3.end()
            }
        }
    }

    static func waitUntilReady(_ origin: String, log: String) async throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let probe = try await run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(origin)/readyz"])
            if probe.stdout == "200" { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("the origin at \(origin) is not ready: \((try? String(contentsOfFile: log, encoding: .utf8))?.suffix(1500) ?? "")")
    }
}
