import Foundation
import Jobs
import Redis
import TestSupport
import Testing

@Suite("redis cluster key slots")
struct RedisClusterSlotTests {
    @Test("CRC16 as the cluster specification gives it")
    func crc16() {
        // The specification's test vector: CRC16-CCITT (XMODEM) of "123456789".
        #expect(RedisCluster.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisCluster.crc16([UInt8]()) == 0)
    }

    @Test("hash tags as the specification's examples have them", arguments: [
        ("{user1000}.following", "user1000"), ("{user1000}.followers", "user1000"),
        ("foo{}{bar}", "foo{}{bar}"), ("foo{{bar}}zap", "{bar"), ("foo{bar}{zap}", "bar"), ("{sg}:jobs:normal", "sg"), ("no-tag", "no-tag"),
        ("{", "{"), ("}{", "}{"),
    ])
    func hashTags(_ key: String, _ hashed: String) {
        #expect(RedisCluster.slot(of: key) == Int(RedisCluster.crc16(Array(hashed.utf8)) & 0x3FFF))
    }

    @Test("the key a command is routed by", arguments: [
        (["GET", "{a}x"], "a"), (["EVALSHA", "sha", "2", "{b}1", "{c}2", "arg"], "b"), (["EVAL", "return 1", "0"], nil),
        (["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "{d}s", ">"], "d"), (["XGROUP", "CREATE", "{e}s", "g", "0"], "e"),
        (["PING"], nil), (["PUBLISH", "ch", "m"], nil), (["WAIT", "1", "100"], nil),
    ] as [([String], String?)])
    func commandKeys(_ command: [String], _ tag: String?) {
        #expect(RedisCluster.slot(ofCommand: command.map { Array($0.utf8) }) == tag.map { RedisCluster.slot(of: $0) })
    }
}

/// A real three-primary cluster on loopback.
@Suite("redis cluster", .serialized)
struct RedisClusterTests {
    @Test("slots agree with CLUSTER KEYSLOT")
    func slotsAgree() async throws {
        try await withRedisCluster { cluster in
            let client = cluster.client(seed: cluster.ports[0])
            for key in ["foo", "bar", "hello", "{sg}:jobs", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "123456789", "a{b}c{d}"] {
                let slot = try await client.send(["CLUSTER", "KEYSLOT", key]).int
                #expect(slot == Int64(RedisCluster.slot(of: key)), "\(key)")
            }
        }
    }

    @Test("the queue works through a node that does not own its slot; MOVED and ASK are followed")
    func queueAcrossTheCluster() async throws {
        try await withRedisCluster { cluster in
            let slot = RedisCluster.slot(of: Keyspace().tag)
            let owner = RedisClusterFixture.owner(of: slot)
            let importer = (owner + 1) % 3
            // Seeded with a node that does not own {sg}: the first command is answered MOVED.
            let queue = JobQueue(redis: cluster.client(seed: cluster.ports[importer]))
            try await queue.ensureGroups()
            #expect(queue.redis.isCluster)
            var ids: [String] = []
            for _ in 0..<10 { ids.append(try await queue.enqueue(JobSpec(kind: .noop)).jobID) }
            ids += try await queue.enqueue(batch: (0..<10).map { _ in JobSpec(kind: .noop) }).map(\.jobID)
            let runs = RunCounter()
            try await runs.drain(queue, until: 20)
            for id in ids { #expect(try await queue.job(id)?.state == .succeeded) }
            // A pipeline across slots: what the first key's node cannot answer is sent where it belongs.
            let replies = try await queue.redis.pipeline([["SET", "foo", "1"], ["SET", "bar", "2"], ["GET", "foo"], ["GET", "bar"]])
            #expect(replies == [.status("OK"), .status("OK"), .string(Array("1".utf8)), .string(Array("2".utf8))])
            #expect(RedisClusterFixture.owner(of: RedisCluster.slot(of: "foo")) != RedisClusterFixture.owner(of: RedisCluster.slot(of: "bar")))
            let ownerConnection = try cluster.connection(cluster.ports[owner])
            #expect(try ownerConnection.send(["CLUSTER", "COUNTKEYSINSLOT", String(slot)]).int ?? 0 > 0)

            // The slot starts migrating to another node: a key the owner lacks is answered ASK.
            let importing = try cluster.connection(cluster.ports[importer])
            _ = try importing.send(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", cluster.nodeIDs[owner]])
            _ = try ownerConnection.send(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", cluster.nodeIDs[importer]])
            try await queue.redis.send(["SET", "{sg}:probe", "asked"])
            _ = try importing.send(["ASKING"])
            #expect(try importing.send(["GET", "{sg}:probe"]).text == "asked", "the write went to the importing node")
            #expect(try await queue.redis.send(["GET", "{sg}:probe"]).text == "asked")

            // Migration ends: every key moves and the slot is the importer's; the client, told
            // MOVED, follows, and the queue goes on with its jobs where they now are.
            while let keys = try ownerConnection.send(["CLUSTER", "GETKEYSINSLOT", String(slot), "100"]).array, !keys.isEmpty {
                _ = try ownerConnection.send(
                    ["MIGRATE", "127.0.0.1", String(cluster.ports[importer]), "", "0", "5000", "KEYS"] + keys.compactMap(\.text)
                )
            }
            for port in cluster.ports {
                _ = try cluster.connection(port).send(["CLUSTER", "SETSLOT", String(slot), "NODE", cluster.nodeIDs[importer]])
            }
            for id in ids { #expect(try await queue.job(id)?.state == .succeeded) }
            var later: [String] = []
            for _ in 0..<5 { later.append(try await queue.enqueue(JobSpec(kind: .noop)).jobID) }
            try await runs.drain(queue, until: 25)
            for id in later { #expect(try await queue.job(id)?.state == .succeeded) }
            #expect(await runs.counts.values.allSatisfy { $0 == 1 })
            #expect(try importing.send(["CLUSTER", "COUNTKEYSINSLOT", String(slot)]).int ?? 0 > 0)
            #expect(try ownerConnection.send(["CLUSTER", "COUNTKEYSINSLOT", String(slot)]).int == 0)
        }
    }

    @Test("a killed primary's replica is followed once it takes over; jobs acknowledged after WAIT survive")
    func primaryFailover() async throws {
        try await withRedisCluster(replicas: 1) { cluster in
            let slot = RedisCluster.slot(of: Keyspace().tag)
            let owner = RedisClusterFixture.owner(of: slot)
            // Seeded with the owner itself: no MOVED ever says this is a cluster, the first use must.
            let durable = JobQueue(redis: cluster.client(seed: cluster.ports[owner], reconnectWindow: 30, waitReplicas: 1, waitTimeout: 2))
            let queue = JobQueue(redis: cluster.client(seed: cluster.ports[owner], reconnectWindow: 30))
            try await queue.ensureGroups()
            #expect(queue.redis.isCluster)
            var ids: [String] = []
            for _ in 0..<10 { ids.append(try await durable.enqueue(JobSpec(kind: .noop)).jobID) }
            #expect(durable.redis.isCluster)

            cluster.kill(port: cluster.ports[owner])
            // The pooled connections are dead and the node refuses new ones: the client asks the
            // other nodes for the slots until the replica owns them, then goes there.
            let started = Date()
            for id in ids { #expect(try await queue.job(id)?.state == .queued, "job \(id) was acknowledged before the failover") }
            #expect(Date().timeIntervalSince(started) < 30)
            try await cluster.promotion(of: cluster.replicaPorts[owner][0], within: 5)
            var later: [String] = []
            for _ in 0..<5 { later.append(try await queue.enqueue(JobSpec(kind: .noop)).jobID) }
            let runs = RunCounter()
            try await runs.drain(queue, until: 15, seconds: 20)
            for id in ids + later { #expect(try await queue.job(id)?.state == .succeeded) }
            #expect(await runs.counts.values.allSatisfy { $0 == 1 })

            // The new primary has no replica left: a write that waits for one is not acknowledged.
            let error = await #expect(throws: RedisError.self) { try await durable.enqueue(JobSpec(kind: .noop)) }
            if case .notReplicated(_, let replicas, let wanted)? = error {
                #expect(replicas == 0 && wanted == 1)
            } else {
                Issue.record("expected notReplicated, got \(String(describing: error))")
            }
        }
    }
}
