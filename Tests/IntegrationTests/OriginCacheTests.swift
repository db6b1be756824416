import Foundation
import Jobs
import Store
import TestSupport
import Testing
import Vault
import Redis

/// Two `streamgate serve` processes sharing one Redis and one store: L2, change announcements and
/// the metrics that show which level served.
final class SharedOriginHarness: @unchecked Sendable {
    let folder: TemporaryFolder
    let store: AssetStore
    let redis: RedisFixture
    let queue: JobQueue
    let keyring: Keyring
    let segmentCount = 6

    init(redis: RedisFixture) throws {
        folder = try TemporaryFolder()
        store = try AssetStore(root: folder.path + "/store")
        self.redis = redis
        queue = JobQueue(redis: redis.client(connections: 2))
        keyring = Keyring(current: try MasterKey(bytes: Array(Data(base64Encoded: testMasterKey)!)))
    }

    func segment(_ index: Int, generation: Int) -> [UInt8] {
        (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ index &* 3 &+ generation &* 71) }
    }

    @discardableResult
    func publish(_ asset: String, generation: Int) throws -> String {
        let key = try ContentKey.generate()
        let staging = try store.stage(try AssetID(asset))
        try staging.write("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n360p/index.m3u8\n", to: "master.m3u8")
        var playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        for index in 0..<segmentCount {
            playlist += "#EXTINF:2,\n0000\(index).ts\n"
            try staging.write(segment(index, generation: generation), to: "360p/0000\(index).ts")
        }
        try staging.write(playlist + "#EXT-X-ENDLIST\n", to: "360p/index.m3u8")
        try staging.write(try keyring.wrap(key, context: asset).serialized(), to: "keys/\(key.id).key")
        return try staging.publish(requiredFiles: ["master.m3u8"]).version
    }

    /// Runs `body` with one more `streamgate serve` on this store and Redis, stopped afterwards.
    func withOrigin<T>(isolation: isolated (any Actor)? = #isolation, _ body: (OriginServer) async throws -> T) async throws -> T {
        try await withServe(store: store.root, arguments: ["--redis", redis.urlString, "--warm-segments", "0"], body)
    }
}

/// Runs `body` with a ``SharedOriginHarness`` on a redis-server of its own, stopped afterwards.
func withSharedOrigins<T>(isolation: isolated (any Actor)? = #isolation, _ body: (SharedOriginHarness) async throws -> T) async throws -> T {
    try await withRedis { redis in try await body(try SharedOriginHarness(redis: redis)) }
}

@Suite("origin: shared cache and announcements across processes", .serialized)
struct OriginCacheTests {
    @Test("a second identical request is served from L1, as /metrics shows")
    func secondRequestFromL1() async throws {
        try await withSharedOrigins { harness in
            let version = try harness.publish("film", generation: 0)
            try await harness.withOrigin { origin in
                let path = "/v/film/\(version)/360p/00001.ts"
                await #expect(try origin.get(path).body == Data(harness.segment(1, generation: 0)))
                let hitsBefore = try await origin.metric("streamgate_origin_cache_total", ["level": "l1", "result": "hit"])
                let readsBefore = try await origin.metric("streamgate_origin_store_reads_total")
                await #expect(try origin.get(path).body == Data(harness.segment(1, generation: 0)))
                await #expect(try origin.metric("streamgate_origin_cache_total", ["level": "l1", "result": "hit"]) == hitsBefore + 1)
                await #expect(try origin.metric("streamgate_origin_store_reads_total") == readsBefore)
                await #expect(try origin.metric("streamgate_origin_requests_total", ["route": "segment", "status": "200"]) == 2)
                await #expect(try origin.metric("streamgate_origin_request_duration_seconds_count", ["route": "segment", "status": "200"]) == 2)
                await #expect(try origin.metric("streamgate_origin_bytes_total", ["route": "segment"]) == 100_000)
            }
        }
    }

    @Test("an origin with a cold L1 serves from L2 what another origin read from the store")
    func secondOriginServesFromL2() async throws {
        try await withSharedOrigins { harness in
            let version = try harness.publish("film", generation: 0)
            try await harness.withOrigin { first in
                try await harness.withOrigin { second in
                    let path = "/v/film/\(version)/360p/00002.ts"
                    await #expect(try first.get(path).body == Data(harness.segment(2, generation: 0)))
                    await #expect(try first.metric("streamgate_origin_store_reads_total") == 1)
                    // The first origin offers the object to L2 in the background.
                    let name = Keyspace().cacheObject("film/\(version)/360p/00002.ts")
                    let deadline = Date().addingTimeInterval(5)
                    while Date() < deadline, try await harness.queue.redis.send(["EXISTS", name]).int != 1 { try await Task.sleep(for: .milliseconds(20)) }
                    await #expect(try second.get(path).body == Data(harness.segment(2, generation: 0)))
                    await #expect(try second.metric("streamgate_origin_cache_total", ["level": "l2", "result": "hit"]) == 1)
                    await #expect(try second.metric("streamgate_origin_store_reads_total") == 0, "the second origin never read the store")
                    #expect(try await harness.queue.redis.send(["GET", Keyspace().cacheBytes]).int == 50_000, "L2 counts its bytes")
                }
            }
        }
    }

    @Test("SIGTERM stops an origin promptly, Redis subscriptions and all, after it has served")
    func stopsOnSIGTERM() async throws {
        try await withSharedOrigins { harness in
            let version = try harness.publish("film", generation: 0)
            for _ in 0..<5 {
                // Effects spelled out: every `try` below is inside `#expect`, which the closure's
                // inference does not look into.
                try await harness.withOrigin { origin async throws in
                    #expect(try await origin.get("/v/film/\(version)/360p/00000.ts").status == 200)
                    #expect(try await origin.get("/v/film/master.m3u8").status == 200)
                    #expect(await origin.stop(within: 5), "origin on port \(origin.port) exits within 5 s of SIGTERM")
                }
            }
        }
    }

    @Test("a republish and a delete are seen by two origins within a second")
    func invalidation() async throws {
        try await withSharedOrigins { harness in
            let first = try harness.publish("film", generation: 0)
            try await harness.withOrigin { one in
                try await harness.withOrigin { two in
                    let origins = [one, two]
                    // Both learn the published version and cache the entry playlist and a segment.
                    for origin in origins {
                        await #expect(String(decoding: try origin.get("/v/film/master.m3u8").body, as: UTF8.self).contains("\(first)/360p/index.m3u8"))
                        await #expect(try origin.get("/v/film/360p/00000.ts").body == Data(harness.segment(0, generation: 0)))
                    }
                    // Wait until both follow the channel (they subscribe as they start).
                    let subscribed = Date().addingTimeInterval(10)
                    while Date() < subscribed, (try await harness.queue.redis.send(["PUBSUB", "NUMSUB", Keyspace().assetChanges]).array?.last?.int ?? 0) < 2 {
                        try await Task.sleep(for: .milliseconds(20))
                    }

                    // "Within a second" is about the origins, not about how fast this test can look: wait one
                    // second after each announcement, then every origin must already show the change.
                    let second = try harness.publish("film", generation: 1)
                    let announced = ContinuousClock.now
                    #expect(try await harness.queue.redis.announceAssetChange("film", in: harness.queue.keys) == 2, "both origins follow the channel")
                    try await Task.sleep(until: announced + .seconds(1))
                    for origin in origins {
                        let master = await String(decoding: try origin.get("/v/film/master.m3u8").body, as: UTF8.self)
                        #expect(master.contains("\(second)/360p/index.m3u8"), "origin on port \(origin.port) serves the new version within 1 s")
                        await #expect(try origin.get("/v/film/360p/00000.ts").body == Data(harness.segment(0, generation: 1)))
                    }

                    try await harness.store.unpublish(try AssetID("film"))
                    let deleted = ContinuousClock.now
                    try await harness.queue.redis.announceAssetChange("film", in: harness.queue.keys)
                    try await Task.sleep(until: deleted + .seconds(1))
                    for origin in origins {
                        await #expect(try origin.get("/v/film/\(second)/360p/00000.ts").status == 404, "origin on port \(origin.port) stops serving a deleted asset within 1 s")
                        await #expect(try origin.get("/v/film/master.m3u8").status == 404)
                    }
                }
            }
        }
    }
}
