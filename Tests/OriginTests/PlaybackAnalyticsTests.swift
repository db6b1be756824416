@testable import Origin
import Testing

/// The in-memory side of viewer analytics: the session hash, views, and the bounds that keep an
/// attacker's invented sessions and assets from growing memory.
@Suite("viewer analytics: tallies and their bounds")
struct PlaybackAnalyticsTests {
    @Test("the session hash is SipHash-2-4 (the reference vectors)")
    func sipHashVectors() {
        let key = SessionHash(bytes: Array(0..<16))
        #expect(key.hash(raw: [UInt8]()) == 0x726f_db47_dd0e_0e31)
        #expect(key.hash(raw: Array(0..<15)) == 0xa129_ca61_49be_45e5)
        #expect(key.hash(raw: Array(0..<8)) == 0x93f5_f579_9a93_2462)
        // Parts are separated: "ab" + "c" is not "a" + "bc".
        #expect(key.hash(["ab".utf8[...], "c".utf8[...]]) != key.hash(["a".utf8[...], "bc".utf8[...]]))
    }

    static let viewer = PlaybackAnalytics.Viewer(token: nil, address: "203.0.113.7", userAgent: "player/1")

    @Test("a view is a session's multivariant playlist after half an hour without it")
    func views() throws {
        let analytics = PlaybackAnalytics()
        for minute: Int64 in [100, 101, 129, 160] {
            analytics.record(asset: "a", route: .master, rendition: nil, status: 200, bytes: 10, viewer: Self.viewer, minute: minute)
        }
        analytics.record(asset: "a", route: .segment, rendition: "360p", status: 200, bytes: 1000, viewer: Self.viewer, minute: 101)
        analytics.record(asset: "a", route: .segment, rendition: "360p", status: 404, bytes: 20, viewer: Self.viewer, minute: 101)
        let other = PlaybackAnalytics.Viewer(token: "tok", address: "203.0.113.7", userAgent: "player/1")
        analytics.record(asset: "a", route: .master, rendition: nil, status: 200, bytes: 10, viewer: other, minute: 101)
        let tallies = analytics.drain(minute: 160)
        #expect(tallies.values.map(\.views).reduce(0, +) == 3, "100 (first), 101 by the token's viewer, 160 (after 31 minutes)")
        let minute101 = try #require(tallies[.init(asset: "a", minute: 101)])
        #expect(minute101.requests == 4 && minute101.bytes == 1040 && minute101.clientErrors == 1)
        #expect(minute101.segments == ["360p": 1] && minute101.sessions.count == 2)
        #expect(analytics.drain().isEmpty, "a drain starts afresh")
    }

    @Test("invented sessions and assets are dropped past the limits, not kept")
    func bounded() throws {
        var limits = PlaybackAnalytics.Limits()
        limits.assetMinutesPerShard = 4
        limits.sessionsPerShard = 100
        limits.viewsRememberedPerShard = 50
        limits.renditionsPerAsset = 2
        let analytics = PlaybackAnalytics(limits: limits)
        for index in 0..<10_000 {
            let viewer = PlaybackAnalytics.Viewer(token: nil, address: "198.51.100.\(index % 250)", userAgent: "bot-\(index)")
            analytics.record(asset: "asset-\(index % 200)", route: .master, rendition: nil, status: 200, bytes: 1, viewer: viewer, minute: 7)
            analytics.record(asset: "asset-0", route: .segment, rendition: Substring("r\(index)"), status: 200, bytes: 1, viewer: viewer, minute: 7)
        }
        let tallies = analytics.drain(minute: 7)
        #expect(tallies.count <= 4 * PlaybackAnalytics.shardCount)
        #expect(tallies.values.map(\.sessions.count).reduce(0, +) <= 100 * PlaybackAnalytics.shardCount)
        #expect(tallies.values.allSatisfy { $0.segments.count <= 2 })
    }

    @Test("a beacon is a small JSON object naming its event; anything else is refused by field", arguments: [
        (#"{"event":"startup","ms":850.4}"#, "startup 850"),
        (#"{"event":"switch","rendition":"720p","extra":[1,2]}"#, "switch -"),
        (#"{"event":"rebuffer"}"#, "rebuffer -"),
        (#"{"ms":3}"#, "field 'event' is required"),
        (#"{"event":"startup","ms":true}"#, "field 'ms' has the wrong type"),
        (#"{"event":"startup","ms":-1}"#, "field 'ms' must be"),
        (#"{"event":"startup","ms":1e300}"#, "field 'ms' must be"),
        (#"{"event":7}"#, "field 'event' has the wrong type"),
        (#"{"event":"dance"}"#, "must be startup, rebuffer, error or switch, got 'dance'"),
        ("[1]", "must be a JSON object"),
        ("", "must be a JSON object"),
    ])
    func beacons(_ body: String, _ expected: String) {
        do {
            let beacon = try Beacon.parse(Array(body.utf8))
            #expect("\(beacon.event.rawValue) \(beacon.milliseconds.map(String.init) ?? "-")" == expected)
        } catch {
            #expect(error.description.contains(expected), "\(error)")
        }
        #expect(throws: BeaconError.self) { try Beacon.parse(Array(repeating: UInt8(ascii: " "), count: Beacon.maximumBytes + 1)) }
    }
}
