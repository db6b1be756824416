import Foundation
import TestSupport
import Testing
import Redis

/// The fixture every Redis test stands on: whatever the test does, it leaves no server behind.
@Suite("redis-server fixture")
struct RedisFixtureTests {
    struct Planned: Error {}

    @Test("a body that throws still stops the server, shuts its clients and removes its folder", arguments: [false, true])
    func throwingBodyLeavesNothing(overTCP: Bool) async throws {
        var seen: (pid: Int32, directory: String, client: RedisClient)?
        await #expect(throws: Planned.self) {
            try await withRedis(RedisOptions(password: overTCP ? "fixture-pass-1" : nil)) { redis in
                let client = redis.client(connections: 1, reconnectWindow: 0.2)
                #expect(try await client.send(["PING"]) == .status("PONG"))
                seen = (try #require(redis.processIdentifier), redis.directory, client)
                throw Planned()
            }
        }
        let (pid, directory, client) = try #require(seen)
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "redis-server \(pid) still runs")
        #expect(!FileManager.default.fileExists(atPath: directory))
        await #expect(throws: RedisError.self, "a client of an ended fixture is shut down") { try await client.send(["PING"]) }
    }

    @Test("stop and restart keep the folder; the fixture's end removes it")
    func stopAndRestart() async throws {
        let directory = try await withRedis(RedisOptions(appendOnly: true)) { redis in
            let client = redis.client(connections: 1)
            try await client.send(["SET", "k", "v"])
            redis.stop()
            #expect(redis.processIdentifier == nil)
            try redis.restart()
            _ = try? await client.send(["PING"])
            #expect(try await client.send(["GET", "k"]).text == "v")
            return redis.directory
        }
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test("the sentinel and cluster fixtures leave no process and no folder when their body throws", arguments: [false, true])
    func multiServerFixturesLeaveNothing(cluster: Bool) async throws {
        var seen: (pids: [Int32], directory: String)?
        await #expect(throws: Planned.self) {
            if cluster {
                try await withRedisCluster { redis in
                    seen = (redis.processIdentifiers, redis.directory)
                    throw Planned()
                }
            } else {
                try await withSentinelRedis { redis in
                    seen = (redis.processIdentifiers, redis.directory)
                    throw Planned()
                }
            }
        }
        let (pids, directory) = try #require(seen)
        #expect(pids.count == (cluster ? 3 : 6))
        for pid in pids { #expect(kill(pid, 0) == -1 && errno == ESRCH, "\(pid) still runs") }
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}
