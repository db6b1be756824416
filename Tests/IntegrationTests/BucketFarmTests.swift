import Foundation
import Jobs
import NIOCore
import S3
import Store
import TestSupport
import Testing

/// Workers and an origin that share no disk, only Redis and a bucket (SeaweedFS, checking
/// signatures): each worker transcodes into a spool of its own and stores into the bucket, the
/// origin reads from the bucket, ffmpeg plays what it serves.
@Suite("bucket store: workers and origin sharing only Redis and S3", .serialized)
struct BucketFarmTests {
    /// What a process needs to reach the bucket: AWS's own variables, as operators set them.
    static func environment(_ server: S3ServerProcess) -> [String: String] {
        ["AWS_ACCESS_KEY_ID": S3ServerProcess.accessKeyID, "AWS_SECRET_ACCESS_KEY": S3ServerProcess.secretAccessKey, "AWS_REGION": "us-east-1"]
    }

    static func storeOptions(_ server: S3ServerProcess) -> [String] {
        ["--store", "s3://\(server.bucket)/farm", "--s3-endpoint", server.endpoint]
    }

    @Test("segments reach the bucket while the ladder is encoded; a worker killed mid-job is replaced; ffmpeg plays the bucket through the origin", .tags(.endToEnd))
    func transcodeIntoBucket() async throws {
        try await withS3 { server in
            try await withFarm { farm in
                let environment = Self.environment(server)
                let spool = farm.folder.path + "/spool-doomed"
                let doomed = try farm.startWorker(
                    "doomed", store: Self.storeOptions(server), environment: environment, extra: ["--spool", spool]
                )
                let id = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: FarmTests.fast, assetID: "bucketed")).jobID
                _ = try await farm.wait(for: id, timeout: 60) { $0.state == .running }

                // While the job runs, its sealed segments are already in the bucket, and the asset is
                // shown growing: the pointer says so, and its playlists grow.
                let client = server.client()
                var early: [String] = []
                let deadline = Date().addingTimeInterval(60)
                while early.count < 3, Date() < deadline {
                    early = try await client.listAllObjects(bucket: server.bucket, prefix: "farm/objects/bucketed/").objects().map(\.key)
                    try await Task.sleep(for: .milliseconds(200))
                }
                #expect(early.count >= 3 && early.allSatisfy { $0.hasSuffix(".ts") || $0.hasSuffix(".m3u8") || $0.hasSuffix("/poster.jpg") || $0.contains("/keys/") }, "\(early)")
                #expect(try await farm.queue.job(id)?.state == .running, "the segments went up before the job ended")
                _ = try await farm.wait(for: id, timeout: 60) { $0.playableAt != nil }
                let pointer = try await client.getObjectBytes(bucket: server.bucket, key: "farm/assets/bucketed", maxBytes: 4096)
                #expect(String(buffer: pointer).contains("\"growing\":true"), "shown while it grows: \(String(buffer: pointer))")

                doomed.signal(SIGKILL)
                _ = doomed.wait(timeout: 5)
                try farm.startWorker(
                    "rescuer", store: Self.storeOptions(server), environment: environment, extra: ["--spool", farm.folder.path + "/spool-rescuer"]
                )
                let record = try await farm.wait(for: id, timeout: 180) { $0.state.isTerminal }
                #expect(record.state == .succeeded && record.worker == "rescuer", "\(record): \(farm.log("rescuer").suffix(2000))")
                #expect(!FileManager.default.fileExists(atPath: farm.store), "no worker wrote a folder store")
                let spooled = farm.folder.path + "/spool-rescuer"
                let left = try FileManager.default.subpathsOfDirectory(atPath: spooled).filter { path in
                    var folder: ObjCBool = false
                    return FileManager.default.fileExists(atPath: spooled + "/" + path, isDirectory: &folder) && !folder.boolValue
                }
                #expect(left.isEmpty, "the rescuer's spool holds no file after its publish: \(left)")

                try await withServe(store: "s3://\(server.bucket)/farm", arguments: ["--s3-endpoint", server.endpoint], environment: environment) { origin in
                    let ready = try await origin.get("/readyz")
                    #expect(ready.status == 200, "\(String(decoding: ready.body, as: UTF8.self))")
                    // A range of a segment the origin does not hold: that range, read from the bucket.
                    let segmentKey = try #require(try await client.listAllObjects(bucket: server.bucket, prefix: "farm/objects/bucketed/").objects()
                        .map(\.key).filter { $0.hasSuffix(".ts") }.sorted().last)
                    let stored = try await client.getObjectBytes(bucket: server.bucket, key: segmentKey, maxBytes: 64 << 20)
                    let path = "/v/bucketed/" + segmentKey.split(separator: "/").suffix(2).joined(separator: "/")
                    let before = try await origin.metric("streamgate_origin_store_reads_total")
                    let ranged = try await run("/usr/bin/curl", ["-s", "-D", "-", "-o", farm.folder.path + "/range.bin", "-r", "100-1099", origin.baseURL + path])
                    #expect(ranged.stdout.contains("206") && ranged.stdout.lowercased().contains("content-range: bytes 100-1099/\(stored.readableBytes)"), "\(ranged.stdout)")
                    let body = try Data(contentsOf: URL(fileURLWithPath: farm.folder.path + "/range.bin"))
                    #expect(body == Data(stored.getBytes(at: 100, length: 1000) ?? []))
                    #expect(try await origin.metric("streamgate_origin_store_reads_total") == before + 1, "one ranged read")
                    let play = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(origin.baseURL)/v/bucketed/master.m3u8", "-map", "0", "-f", "null", "-"], timeout: 120)
                    #expect(play.status == 0 && play.stderr.isEmpty, "\(play.stderr)")
                    let missing = try await origin.get("/v/bucketed/720p/nothing.ts")
                    #expect(missing.status == 404)
                }
            }
        }
    }

    @Test("an origin whose bucket refuses its keys is not ready, and says the store is why")
    func refusedKeysAreNotReady() async throws {
        try await withS3 { server in
            var environment = Self.environment(server)
            environment["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-not-the-secret"
            try await withServe(store: "s3://\(server.bucket)/farm", arguments: ["--s3-endpoint", server.endpoint], environment: environment) { origin in
                let ready = try await origin.get("/readyz")
                #expect(ready.status == 503 && String(decoding: ready.body, as: UTF8.self).contains("store"))
                #expect(try await origin.get("/v/any/master.m3u8").status >= 500)
            }
        }
    }

    @Test("streamgate transcode --out s3://…: published into the bucket by hand, the spool left empty", .tags(.endToEnd))
    func transcodeCommandIntoBucket() async throws {
        try await withS3 { server in
            let folder = try TemporaryFolder()
            let output = try await run(streamgateBinary, [
                "transcode", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "--profile", FarmTests.fast,
                "--out", "s3://\(server.bucket)/cli", "--s3-endpoint", server.endpoint, "--asset-id", "by-hand", "--spool", folder.path,
                "--publisher", "job-by-hand", "--quiet",
            ], environment: streamgateEnvironment().merging(Self.environment(server)) { $1 }, timeout: 120)
            #expect(output.status == 0, "\(output.stderr)")
            #expect(output.stdout.contains("s3://\(server.bucket)/cli/objects/by-hand/v"), "\(output.stdout)")
            let store = BucketStore(client: server.client(), bucket: server.bucket, prefix: "cli")
            let versions = try await store.versions(of: try AssetID("by-hand"))
            let current = try #require(versions.current)
            #expect(versions.publisher == "job-by-hand")
            let master = try #require(try await store.readBuffer("master.m3u8", of: current, maximumBytes: 1 << 20))
            #expect(String(buffer: master).hasPrefix("#EXTM3U"))
            let left = try FileManager.default.subpathsOfDirectory(atPath: folder.path).filter { path in
                var isFolder: ObjCBool = false
                return FileManager.default.fileExists(atPath: folder.path + "/" + path, isDirectory: &isFolder) && !isFolder.boolValue
            }
            #expect(left.isEmpty, "\(left)")

            let refused = try await run(streamgateBinary, [
                "transcode", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "--profile", FarmTests.fast,
                "--out", "s3://Bad_Bucket/x", "--quiet",
            ], environment: streamgateEnvironment().merging(Self.environment(server)) { $1 }, timeout: 60)
            #expect(refused.status != 0 && refused.stderr.contains("Bad_Bucket"), "\(refused.stderr)")
        }
    }
}
