import Foundation
import Jobs
import NIOCore
import S3
import Redis
import TestSupport
import Testing
import Vault

/// Disaster recovery with the real binary: a backup of a live deployment, the store and Redis
/// destroyed, the restore — every asset plays, a gated asset still gates, the queue resumes; a
/// damaged backup is refused with nothing written; the store's copy serves when the store fails.
@Suite("disaster recovery", .serialized)
struct DisasterRecoveryTests {
    static let apiKey = "recovery-test-api-key-0123456789"
    static let policy = #"{"chain_id":1,"condition":{"erc721":{"contract":"0x00000000000000000000000000000000000000a1"}}}"#

    static func job(_ asset: String) -> JobSpec {
        JobSpec(source: packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, profile: "fast", assetID: asset)
    }

    static func keyIDs(of asset: String, store: String) throws -> [String] {
        let objects = store + "/objects/\(asset)"
        let versions = try FileManager.default.contentsOfDirectory(atPath: objects).sorted()
        let keys = try FileManager.default.contentsOfDirectory(atPath: objects + "/" + versions.last! + "/keys")
        return keys.filter { $0.hasSuffix(".key") }.map { String($0.dropLast(4)) }
    }

    func streamgate(_ arguments: [String], _ environment: [String: String] = streamgateEnvironment()) async throws -> ProcessOutput {
        try await run(streamgateBinary, arguments, environment: environment)
    }

    @Test("the drill: back up, destroy the store and Redis, restore: assets play, gated ones gate, the queue resumes", .tags(.endToEnd))
    func drill() async throws {
        try await withFarm { farm in
            let backups = farm.folder.path + "/backups"
            let worker = try farm.startWorker("before")
            for asset in ["public-one", "gated-one"] {
                let id = try await farm.queue.enqueue(Self.job(asset)).jobID
                #expect(try await farm.wait(for: id) { $0.state.isTerminal }.state == .succeeded)
            }
            try await farm.queue.redis.send(["SET", farm.queue.keys.policy("gated-one"), Self.policy])
            worker.terminate(grace: 10)
            // Queued while no worker runs: the restored queue must still hold it.
            let waiting = try await farm.queue.enqueue(Self.job("queued-one")).jobID

            let first = try await streamgate(["backup", "--store", farm.store, "--redis", farm.redis.urlString, "--to", backups])
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stdout.contains("2 assets"), "\(first.stdout)")
            // Incremental: the versions did not change, so only the Redis snapshot may be new.
            let second = try await streamgate(["backup", "--store", farm.store, "--redis", farm.redis.urlString, "--to", backups])
            #expect(second.status == 0 && (second.stdout.contains("(0 new") || second.stdout.contains("(1 new")), "\(second.stdout)")
            let gatedKeys = try Self.keyIDs(of: "gated-one", store: farm.store)

            // The disaster.
            try FileManager.default.removeItem(atPath: farm.store)
            try await farm.queue.redis.send(["FLUSHALL"])

            let restored = try await streamgate(["restore", "--store", farm.store, "--redis", farm.redis.urlString, "--from", backups])
            #expect(restored.status == 0, "\(restored.stderr)")
            #expect(restored.stdout.contains("2 assets"), "\(restored.stdout)")

            try await withServe(store: farm.store, arguments: ["--redis", farm.redis.urlString], environment: ["STREAMGATE_API_KEYS": Self.apiKey]) { server in
                let play = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(server.baseURL)/v/public-one/master.m3u8", "-map", "0", "-f", "null", "-"])
                #expect(play.status == 0, "\(play.stderr)")
                for key in gatedKeys {
                    let refused = try await server.get("/v/gated-one/keys/\(key)")
                    #expect(refused.status != 200, "a gated key is still refused without a token")
                }
            }
            // The queue resumes where it was.
            #expect(try await farm.queue.job(waiting)?.state == .queued)
            try farm.startWorker("after")
            #expect(try await farm.wait(for: waiting) { $0.state.isTerminal }.state == .succeeded)
        }
    }

    @Test("a tampered, truncated or unsigned backup is refused by name, and nothing is restored", .tags(.endToEnd))
    func damagedBackups() async throws {
        try await withFarm { farm in
            let backups = farm.folder.path + "/backups"
            try farm.startWorker("one")
            let id = try await farm.queue.enqueue(Self.job("kept")).jobID
            #expect(try await farm.wait(for: id) { $0.state.isTerminal }.state == .succeeded)
            #expect(try await streamgate(["backup", "--store", farm.store, "--redis", farm.redis.urlString, "--to", backups]).status == 0)
            await farm.stopProcesses()
            let name = try String(contentsOfFile: backups + "/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let manifestPath = backups + "/backups/\(name)/manifest.json"
            let manifest = try Data(contentsOf: URL(fileURLWithPath: manifestPath))
            let object = try #require(try JSONSerialization.jsonObject(with: manifest) as? [String: Any])
            let asset = try #require((object["assets"] as? [[String: Any]])?.first)
            let segment = try #require((asset["files"] as? [[String: Any]])?.first { ($0["path"] as? String)?.hasSuffix(".ts") == true })
            let hash = try #require(segment["sha256"] as? String)
            let objectPath = backups + "/objects/\(hash.prefix(2))/\(hash)"
            let original = try Data(contentsOf: URL(fileURLWithPath: objectPath))

            func refused(_ why: String) async throws {
                let target = farm.folder.path + "/restored-\(UUID().uuidString)"
                try await farm.queue.redis.send(["FLUSHALL"])
                let result = try await streamgate(["restore", "--store", target, "--redis", farm.redis.urlString, "--from", backups])
                #expect(result.status != 0 && result.stderr.contains(why), "\(result.stderr)")
                let published = (try? FileManager.default.contentsOfDirectory(atPath: target + "/assets")) ?? []
                #expect(published.isEmpty, "nothing published: \(published)")
                #expect(try await farm.queue.redis.send(["DBSIZE"]).int == 0, "nothing written to Redis")
            }
            // One flipped bit in a segment.
            var altered = original
            altered[altered.count / 2] ^= 0x01
            try altered.write(to: URL(fileURLWithPath: objectPath))
            try await refused("do not hash to")
            // Cut short.
            try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: objectPath))
            try await refused("truncated")
            try original.write(to: URL(fileURLWithPath: objectPath))
            // The manifest edited (a file dropped), or its signature gone.
            var edited = try #require(String(data: manifest, encoding: .utf8))
            edited = edited.replacingOccurrences(of: "\"redis_prefix\" : \"sg\"", with: "\"redis_prefix\" : \"sg\" ")
            try Data(edited.utf8).write(to: URL(fileURLWithPath: manifestPath))
            try await refused("the signature does not match")
            try manifest.write(to: URL(fileURLWithPath: manifestPath))
            try FileManager.default.removeItem(atPath: backups + "/backups/\(name)/manifest.sig")
            try await refused("unsigned manifest")
            // Another deployment's master key.
            let other = streamgateEnvironment(masterKey: Data((0..<32).map { UInt8($0 &* 7 &+ 1) }).base64EncodedString())
            let foreign = try await streamgate(["restore", "--store", farm.folder.path + "/foreign", "--redis", farm.redis.urlString, "--from", backups], other)
            #expect(foreign.status != 0)
        }
    }
}

@Suite("master key rotation and store failover", .serialized)
struct KeyRotationTests {
    static let newKey = Data((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }).base64EncodedString()

    func transcode(_ asset: String, into store: String) async throws {
        let made = try await run(streamgateBinary, [
            "transcode", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "--out", store, "--asset-id", asset,
            "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path, "--quiet",
        ], environment: streamgateEnvironment())
        #expect(made.status == 0, "\(made.stderr)")
    }

    /// Every file of the store's versions, by path, with its bytes.
    func files(_ store: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let root = store + "/objects"
        for relative in FileManager.default.enumerator(atPath: root)?.compactMap({ $0 as? String }) ?? [] {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isFolder), !isFolder.boolValue {
                files[relative] = try Data(contentsOf: URL(fileURLWithPath: root + "/" + relative))
            }
        }
        return files
    }

    @Test("every content key is wrapped again under the new master key; no segment changes; the old key can go", .tags(.endToEnd))
    func rotation() async throws {
        let folder = try TemporaryFolder()
        let store = folder.path + "/store"
        try await transcode("rotated", into: store)
        let before = try files(store)
        let oldKey = try MasterKey(base64: testMasterKey, source: "test")
        let newKey = try MasterKey(base64: Self.newKey, source: "test")

        // Without the old key to unwrap with, nothing can be rotated: said, nothing changed.
        let alone = try await run(streamgateBinary, ["rotate-master-key", "--store", store], environment: streamgateEnvironment(masterKey: Self.newKey))
        #expect(alone.status != 0 && alone.stderr.contains("STREAMGATE_PREVIOUS_MASTER_KEYS"), "\(alone.stderr)")

        var both = streamgateEnvironment(masterKey: Self.newKey)
        both[Keyring.previousKeysEnvironmentVariable] = testMasterKey
        // Playback while it runs: a server holding both keys.
        try await withServe(store: store, environment: both) { server in
            let rotated = try await run(streamgateBinary, ["rotate-master-key", "--store", store], environment: both)
            #expect(rotated.status == 0, "\(rotated.stderr)")
            #expect(rotated.stdout.contains("0 already current") && !rotated.stdout.contains(" 0 keys wrapped again"), "\(rotated.stdout)")
            let play = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(server.baseURL)/v/rotated/master.m3u8", "-map", "0", "-f", "null", "-"])
            #expect(play.status == 0, "\(play.stderr)")
        }
        let after = try files(store)
        #expect(Set(after.keys) == Set(before.keys), "no file added or lost")
        for (path, bytes) in after {
            if path.contains("/keys/") && path.hasSuffix(".key") {
                let wrapped = try WrappedKey(serialized: Array(bytes))
                #expect(wrapped.masterKeyID == newKey.id, "\(path) is under the new master key")
                #expect(bytes != before[path])
                let old = try WrappedKey(serialized: Array(before[path]!))
                #expect(old.masterKeyID == oldKey.id)
            } else {
                #expect(bytes == before[path], "\(path) is untouched")
            }
        }
        // Run again: nothing to do. Then the old key can go: a server with the new key alone plays.
        let again = try await run(streamgateBinary, ["rotate-master-key", "--store", store], environment: both)
        #expect(again.stdout.contains(" 0 keys wrapped again"), "\(again.stdout)")
        try await withServe(store: store, environment: streamgateEnvironment(masterKey: Self.newKey)) { server in
            let play = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(server.baseURL)/v/rotated/master.m3u8", "-map", "0", "-f", "null", "-"])
            #expect(play.status == 0, "\(play.stderr)")
        }
    }

    @Test("with the store gone, an origin serves from its fallback copy", .tags(.endToEnd))
    func failover() async throws {
        let folder = try TemporaryFolder()
        let store = folder.path + "/store", backups = folder.path + "/backups", copy = folder.path + "/copy"
        try await transcode("everywhere", into: store)
        #expect(try await run(streamgateBinary, ["backup", "--store", store, "--to", backups], environment: streamgateEnvironment()).status == 0)
        #expect(try await run(streamgateBinary, ["restore", "--store", copy, "--from", backups], environment: streamgateEnvironment()).status == 0)
        try await withServe(store: store, arguments: ["--fallback-store", copy, "--l1-bytes", "0"]) { server in
            let first = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(server.baseURL)/v/everywhere/master.m3u8", "-map", "0", "-f", "null", "-"])
            #expect(first.status == 0, "\(first.stderr)")
            #expect(try await server.metric("streamgate_origin_store_failovers_total") == 0)
            // The region's store fails: its volume is gone.
            try FileManager.default.moveItem(atPath: store, toPath: store + ".gone")
            try await Task.sleep(for: .seconds(1.5))  // past the origin's version memory
            let second = try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(server.baseURL)/v/everywhere/master.m3u8", "-map", "0", "-f", "null", "-"])
            #expect(second.status == 0, "\(second.stderr)")
            #expect(try await server.metric("streamgate_origin_store_failovers_total") > 0)
        }
    }
}

@Suite("backups in a bucket", .serialized)
struct BucketBackupTests {
    @Test("a backup kept in a real S3 bucket restores the same files; an altered object there is refused", .tags(.endToEnd))
    func bucketBackup() async throws {
        try await withS3 { server in
            let folder = try TemporaryFolder()
            let store = folder.path + "/store", copy = folder.path + "/copy"
            let made = try await run(streamgateBinary, [
                "transcode", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "--out", store, "--asset-id", "offsite",
                "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path, "--quiet",
            ], environment: streamgateEnvironment())
            #expect(made.status == 0, "\(made.stderr)")
            let environment = streamgateEnvironment().merging(BucketFarmTests.environment(server)) { $1 }
            let target = ["s3://\(server.bucket)/backups", "--s3-endpoint", server.endpoint]
            let backup = try await run(streamgateBinary, ["backup", "--store", store, "--to"] + target, environment: environment)
            #expect(backup.status == 0 && backup.stdout.contains("1 assets"), "\(backup.stdout)\(backup.stderr)")
            let again = try await run(streamgateBinary, ["backup", "--store", store, "--to"] + target, environment: environment)
            #expect(again.stdout.contains("(0 new"), "incremental: \(again.stdout)")
            let restore = try await run(streamgateBinary, ["restore", "--store", copy, "--from"] + target, environment: environment)
            #expect(restore.status == 0, "\(restore.stderr)")
            let original = try KeyRotationTests().files(store), restored = try KeyRotationTests().files(copy)
            // The same files, byte for byte, under another version name.
            func byName(_ files: [String: Data]) -> [String: Data] {
                Dictionary(uniqueKeysWithValues: files.compactMap { path, data in
                    let parts = path.split(separator: "/", maxSplits: 2)
                    return parts.count == 3 && !parts[2].hasPrefix(".") ? (String(parts[2]), data) : nil
                })
            }
            #expect(byName(original) == byName(restored) && !byName(original).isEmpty)

            // One object altered in the bucket: refused, nothing restored.
            let client = server.client()
            let objects = try await client.listAllObjects(bucket: server.bucket, prefix: "backups/objects/").objects()
            let victim = try #require(objects.max { $0.size < $1.size })
            try await client.putObject(bucket: server.bucket, key: victim.key, body: ByteBuffer(repeating: 7, count: Int(victim.size)))
            let refused = try await run(streamgateBinary, ["restore", "--store", folder.path + "/third", "--from"] + target, environment: environment)
            #expect(refused.status != 0 && refused.stderr.contains("do not hash to"), "\(refused.stderr)")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: folder.path + "/third/assets")) ?? []).isEmpty)
        }
    }
}
