import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import Origin

/// A deterministic generator, so a failing workload can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

@Suite("L1 cache: W-TinyLFU bounded by bytes")
struct ByteCacheTests {
    @Test("stores, replaces and removes; counts hits and misses")
    func basics() {
        let cache = ByteCache<[UInt8]>(capacity: 100_000)
        #expect(cache.get("a") == nil)
        cache.put("a", [1, 2, 3], cost: 3)
        #expect(cache.get("a") == [1, 2, 3])
        cache.put("a", [4], cost: 1)
        #expect(cache.get("a") == [4])
        #expect(cache.statistics.bytes == 1 && cache.statistics.entries == 1)
        cache.remove("a")
        #expect(cache.get("a") == nil)
        #expect(cache.statistics.bytes == 0)
        let stats = cache.statistics
        #expect(stats.hits == 2 && stats.misses == 2)
    }

    @Test("never holds more bytes than its budget, whatever the workload", arguments: [1, 2, 3])
    func budget(seed: UInt64) {
        var random = SeededGenerator(state: seed)
        let capacity = 1_000_000
        let cache = ByteCache<Int>(capacity: capacity, expectedEntries: 200)
        for step in 0..<50_000 {
            let key = "k\(Int.random(in: 0..<2_000, using: &random))"
            if cache.get(key) == nil {
                cache.put(key, step, cost: Int.random(in: 1...60_000, using: &random))
            }
            #expect(cache.statistics.bytes <= capacity)
            if cache.statistics.bytes > capacity { break }
        }
        let stats = cache.statistics
        #expect(stats.entries > 0 && stats.bytes > capacity / 2, "it is used: \(stats)")
    }

    @Test("one viewer scrubbing a long film does not flush everyone's hot segments (an LRU would)")
    func scanResistance() {
        let segment = 10_000
        let capacity = 100 * segment  // room for 100 segments
        let cache = ByteCache<Int>(capacity: capacity, expectedEntries: 100)
        // More hot segments than the protected segment holds (80% of the main space), so some sit in
        // probation, where only the frequency filter keeps one-time objects from replacing them.
        let hot = (0..<90).map { "hot/\($0)" }
        func request(_ key: String, _ value: Int) { if cache.get(key) == nil { cache.put(key, value, cost: segment) } }
        for round in 0..<20 { for key in hot { request(key, round) } }
        // Everyone keeps watching the hot set while one viewer scrubs 5,000 segments, each once.
        var hits = 0
        var asked = 0
        for index in 0..<5_000 {
            request("scan/\(index)", index)
            let key = hot[index % hot.count]
            asked += 1
            if cache.get(key) != nil { hits += 1 } else { cache.put(key, index, cost: segment) }
        }
        let hitRate = Double(hits) / Double(asked)
        #expect(hitRate >= 0.97, "hot hit rate during the scan: \(hitRate)")
        #expect(hot.filter { cache.get($0) != nil }.count >= 88)

        // The same requests through a plain LRU of the same size.
        var lru: [String] = []
        var lruHits = 0
        func lruRequest(_ key: String) -> Bool {
            let hit = lru.contains(key)
            lru.removeAll { $0 == key }
            lru.append(key)
            if lru.count > 100 { lru.removeFirst() }
            return hit
        }
        for _ in 0..<20 { for key in hot { _ = lruRequest(key) } }
        for index in 0..<5_000 {
            _ = lruRequest("scan/\(index)")
            if lruRequest(hot[index % hot.count]) { lruHits += 1 }
        }
        #expect(Double(lruHits) / Double(asked) < 0.1, "an LRU loses the hot set to the scan")
    }

    @Test("an object larger than the window is still cached; one larger than the cache is not")
    func largeObjects() {
        let cache = ByteCache<Int>(capacity: 10_000_000)
        cache.put("segment", 1, cost: 4_500_000)  // a 6 s segment at 6 Mb/s, 45% of the budget
        #expect(cache.get("segment") == 1)
        cache.put("huge", 2, cost: 20_000_000)
        #expect(cache.get("huge") == nil)
        #expect(cache.statistics.bytes <= 10_000_000)
    }

    @Test("invalidating one asset drops its objects only")
    func invalidation() {
        let cache = ByteCache<Int>(capacity: 1_000_000)
        for index in 0..<10 {
            cache.put("a1/360p/\(index)", index, cost: 100)
            cache.put("a2/360p/\(index)", index, cost: 100)
        }
        cache.removeAll { $0.hasPrefix("a1/") }
        #expect((0..<10).allSatisfy { cache.get("a1/360p/\($0)") == nil })
        #expect((0..<10).allSatisfy { cache.get("a2/360p/\($0)") != nil })
    }
}

@Suite("single-flight")
struct SingleFlightTests {
    @Test("100 concurrent loads of one key run the load once")
    func coalesces() async throws {
        let flights = SingleFlight<Int>()
        let loads = NIOLockedValueBox(0)
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    try await flights.value(for: "segment") {
                        loads.withLockedValue { $0 += 1 }
                        try await Task.sleep(for: .milliseconds(200))
                        return 42
                    }
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(results.count == 100 && results.allSatisfy { $0 == 42 })
        #expect(loads.withLockedValue { $0 } == 1)
        #expect(flights.coalesced == 99)
    }

    @Test("a failed load is not remembered; different keys load separately")
    func failures() async throws {
        struct Boom: Error {}
        let flights = SingleFlight<Int>()
        await #expect(throws: Boom.self) { try await flights.value(for: "k") { throw Boom() } }
        #expect(try await flights.value(for: "k") { 7 } == 7)
        async let a = flights.value(for: "a") { try await Task.sleep(for: .milliseconds(50)); return 1 }
        async let b = flights.value(for: "b") { try await Task.sleep(for: .milliseconds(50)); return 2 }
        #expect(try await [a, b] == [1, 2])
    }
}
