import Foundation
import TestSupport
import Testing
import Redis

@Suite("redis URLs")
struct RedisURLTests {
    @Test("parses tcp and unix URLs", arguments: [
        ("redis://localhost", RedisURL(endpoint: .tcp(host: "localhost", port: 6379))),
        ("redis://:s3cret@10.0.0.1:6380/2", RedisURL(endpoint: .tcp(host: "10.0.0.1", port: 6380), password: "s3cret", database: 2)),
        ("redis://user:p%40ss@h:1/0", RedisURL(endpoint: .tcp(host: "h", port: 1), username: "user", password: "p@ss")),
        ("unix:///run/redis.sock", RedisURL(endpoint: .unix(path: "/run/redis.sock"))),
        ("unix:///run/redis.sock?db=3&password=x", RedisURL(endpoint: .unix(path: "/run/redis.sock"), password: "x", database: 3)),
    ])
    func parses(_ text: String, _ expected: RedisURL) throws {
        #expect(try RedisURL(text) == expected)
    }

    @Test("refuses what is not a Redis URL, saying why", arguments: [
        ("http://localhost", "must start with"), ("redis://", "no host"), ("redis://h/x", "database number"),
        ("unix://relative.sock", "absolute"), ("unix:///s?bogus=1", "unknown parameter"), ("redis://h:99999", "port"),
    ])
    func refuses(_ text: String, _ reason: String) {
        let error = #expect(throws: RedisError.self) { try RedisURL(text) }
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }

    @Test("the description never shows the password")
    func hidesPassword() throws {
        #expect(!(try RedisURL("redis://:hunter2@h:1/0").description.contains("hunter2")))
    }
}

@Suite("redis client against a real redis-server")
struct RedisClientTests {
    @Test("binary-safe argv round trip, integers, arrays, nulls")
    func roundTrip() async throws {
        try await withRedis { redis in
            let client = redis.client()
            let binary: [UInt8] = [0, 1, 2, 0x25, 0x73, 0xff, 13, 10, 0]  // NUL, "%s", CRLF: argv, not a format
            try await client.send(bytes: [Array("SET".utf8), Array("k".utf8), binary])
            #expect(try await client.send(["GET", "k"]) == .string(binary))
            #expect(try await client.send(["INCRBY", "n", "41"]) == .integer(41))
            #expect(try await client.send(["GET", "missing"]) == .null)
            try await client.send(["RPUSH", "list", "a", "b"])
            #expect(try await client.send(["LRANGE", "list", "0", "-1"]) == .array([.string(Array("a".utf8)), .string(Array("b".utf8))]))
        }
    }

    @Test("an error reply throws with the server's message; a pipeline keeps it in place")
    func errors() async throws {
        try await withRedis { redis in
            let client = redis.client()
            let error = await #expect(throws: RedisError.self) { try await client.send(["NOSUCHCOMMAND"]) }
            #expect(error?.serverCode == "ERR")
            let replies = try await client.pipeline([["SET", "a", "1"], ["INCR", "a", "extra"], ["GET", "a"]])
            #expect(replies.count == 3)
            #expect(replies[0] == .status("OK"))
            if case .error = replies[1] {} else { Issue.record("expected an error reply, got \(replies[1])") }
            #expect(replies[2] == .string(Array("1".utf8)))
        }
    }

    @Test("many concurrent calls share the pool")
    func concurrency() async throws {
        try await withRedis { redis in
            let client = redis.client(connections: 4)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<200 { group.addTask { try await client.send(["INCR", "counter"]) } }
                try await group.waitForAll()
            }
            #expect(try await client.send(["GET", "counter"]).int == 200)
        }
    }

    @Test("a restarted server is reconnected to: the pooled connection it closed is dropped, not used")
    func reconnects() async throws {
        try await withRedis(RedisOptions(appendOnly: true)) { redis in
            let client = redis.client(connections: 1)
            try await client.send(["SET", "kept", "yes"])
            try redis.restart()
            // The idle connection was closed by the old server: the call finds that out before
            // sending anything, connects again and sees the data the AOF kept.
            #expect(try await client.send(["GET", "kept"]).text == "yes")
        }
    }

    @Test("connecting to nothing fails with the endpoint and reason after the reconnect window", .timeLimit(.minutes(1)))
    func unreachable() async throws {
        let client = RedisClient(url: try RedisURL("unix:///tmp/sg-no-such-redis.sock"), connections: 1, reconnectWindow: 0.3)
        defer { Task { await client.shutdown() } }
        // It gives up after the window (the time limit above catches a client that keeps trying;
        // a stopwatch here would measure the loaded test machine, not the client).
        let error = await #expect(throws: RedisError.self) { try await client.send(["PING"]) }
        #expect(error?.isConnectFailure == true)
        #expect(error?.description.contains("sg-no-such-redis.sock") == true)
    }
}

@Suite("redis client over TCP with a password")
struct RedisTCPTests {
    @Test("redis://:password@host:port/db authenticates and selects the database; a wrong password is named, not shown")
    func authAndSelect() async throws {
        try await withRedis(RedisOptions(password: "s3cret-pass-42")) { redis in
            let port = try #require(redis.port)
            let client = redis.client(url: try RedisURL("redis://:s3cret-pass-42@127.0.0.1:\(port)/2"), connections: 1)
            var answered = false
            for _ in 0..<100 where !answered {
                answered = (try? await client.send(["PING"])) == .status("PONG")
                if !answered { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(answered)
            try await client.send(["SET", "k", "v"])
            #expect(try await client.send(["CLIENT", "INFO"]).text?.contains("db=2") == true, "SELECT 2 on connect")
            // Asked for its slots on first use, a server without cluster support stays a plain server.
            #expect(!client.isCluster)

            let wrong = redis.client(url: try RedisURL("redis://:hunter2-wrong@127.0.0.1:\(port)/0"), connections: 1, reconnectWindow: 0.2)
            let error = await #expect(throws: RedisError.self) { try await wrong.send(["PING"]) }
            #expect(error?.isConnectFailure == true, "\(String(describing: error))")
            #expect(error?.description.contains("127.0.0.1:\(port)") == true)
            #expect(error?.description.contains("hunter2") == false, "the password never appears in an error")
        }
    }
}
