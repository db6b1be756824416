import Foundation
import Jobs
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
