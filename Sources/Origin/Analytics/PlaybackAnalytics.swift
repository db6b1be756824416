import Foundation
import Metrics
import NIOConcurrencyHelpers

/// Viewer analytics as playback happens: every answered playback request of a published asset
/// (the fast path's too) is tallied in memory, per asset and per minute, and a flusher
/// (``AnalyticsFlusher``) writes the tallies to Redis in batches. No Redis round trip per request.
///
/// What is counted: requests, bytes, errors, segments per rendition (watch time and the rendition
/// mix), views (a session asking for an asset's multivariant playlist after 30 minutes without
/// it) and the minute's sessions (concurrent viewers; unique viewers over any span, through
/// Redis's HyperLogLogs). A session is a keyed hash (``SessionHash``) of the viewer's playback
/// token, or of their address and user agent: never stored as such.
///
/// Everything is bounded: only assets that exist are tallied (the caller knows), and each shard
/// holds at most so many asset-minutes, sessions and remembered views between flushes; what does
/// not fit is dropped and counted (`streamgate_analytics_dropped_total`), so invented ids grow
/// neither memory nor Redis.
public final class PlaybackAnalytics: Sendable {
    public struct Limits: Sendable {
        /// Asset-minutes one shard (of 16) holds between flushes.
        public var assetMinutesPerShard = 1024
        /// Session ids one shard holds between flushes.
        public var sessionsPerShard = 65_536
        /// Sessions one shard remembers as watching an asset (for views).
        public var viewsRememberedPerShard = 16_384
        /// Minutes without the multivariant playlist after which a session's next is a new view.
        public var viewGapMinutes: Int64 = 30
        /// Renditions one asset-minute counts apart (an asset has a handful).
        public var renditionsPerAsset = 32

        public init() {}
    }

    /// One asset's minute.
    struct Key: Hashable, Sendable {
        var asset: String
        var minute: Int64
    }

    /// Quality-of-experience reports from players (``Beacon``).
    struct Experience: Sendable, Equatable {
        var startups = 0
        var startupMilliseconds = 0
        var rebuffers = 0
        var rebufferMilliseconds = 0
        var errors = 0
        var switches = 0
    }

    /// What one asset-minute has seen so far.
    struct Tally: Sendable {
        var requests = 0
        var views = 0
        var bytes = 0
        var clientErrors = 0
        var serverErrors = 0
        var segments: [String: Int] = [:]
        var sessions: Set<UInt64> = []
        var experience = Experience()
    }

    struct Shard: Sendable {
        var tallies: [Key: Tally] = [:]
        var sessionCount = 0
        /// Session-and-asset hashes, by the minute their multivariant playlist was last asked.
        var views: [UInt64: Int64] = [:]
        var salt: SessionHash
        var dropped = 0
    }

    static let shardCount = 16
    let limits: Limits
    private let shards: [NIOLockedValueBox<Shard>]
    private let droppedCounter = Counter(label: "streamgate_analytics_dropped_total")

    public init(limits: Limits = Limits()) {
        self.limits = limits
        let salt = SessionHash.random()
        shards = (0..<Self.shardCount).map { _ in NIOLockedValueBox(Shard(salt: salt)) }
    }

    /// The minute now, since the Unix epoch.
    static func currentMinute() -> Int64 { Int64(time(nil)) / 60 }

    /// Who is watching: their playback token when they have one, else their address and user agent.
    struct Viewer {
        var token: String?
        var address: String
        var userAgent: String?

        func session(_ salt: SessionHash) -> UInt64 {
            if let token { return salt.hash([Substring(token).utf8]) }
            return salt.hash([Substring(address).utf8, Substring(userAgent?.prefix(256) ?? "").utf8])
        }
    }

    /// One answered playback request of `asset` (a published one).
    func record(
        asset: String, route: OriginMetrics.Route, rendition: Substring?, status: Int, bytes: Int, viewer: Viewer,
        minute: Int64 = currentMinute()
    ) {
        let key = Key(asset: asset, minute: minute)
        shard(of: asset).withLockedValue { shard in
            guard var tally = take(key, from: &shard) else { return }
            defer { shard.tallies[key] = tally }
            tally.requests += 1
            tally.bytes += bytes
            if status >= 500 { tally.serverErrors += 1 } else if status >= 400 { tally.clientErrors += 1 }
            guard (200..<400).contains(status) else { return }
            let session = viewer.session(shard.salt)
            if route == .segment, let rendition {
                if tally.segments[String(rendition)] != nil || tally.segments.count < limits.renditionsPerAsset {
                    tally.segments[String(rendition), default: 0] += 1
                } else {
                    shard.dropped += 1
                }
            }
            if !tally.sessions.contains(session) {
                if shard.sessionCount < limits.sessionsPerShard {
                    tally.sessions.insert(session)
                    shard.sessionCount += 1
                } else {
                    shard.dropped += 1
                }
            }
            if route == .master {
                let watching = session ^ UInt64(truncatingIfNeeded: asset.hashValue)
                let last = shard.views[watching]
                if last.map({ minute - $0 >= limits.viewGapMinutes }) ?? true { tally.views += 1 }
                if last != nil || shard.views.count < limits.viewsRememberedPerShard { shard.views[watching] = minute }
            }
        }
    }

    /// A player's quality-of-experience report about `asset` (a published one).
    func record(_ beacon: Beacon, asset: String, minute: Int64 = currentMinute()) {
        let key = Key(asset: asset, minute: minute)
        shard(of: asset).withLockedValue { shard in
            guard var tally = take(key, from: &shard) else { return }
            switch beacon.event {
            case .startup:
                tally.experience.startups += 1
                tally.experience.startupMilliseconds += beacon.milliseconds ?? 0
            case .rebuffer:
                tally.experience.rebuffers += 1
                tally.experience.rebufferMilliseconds += beacon.milliseconds ?? 0
            case .error: tally.experience.errors += 1
            case .switch: tally.experience.switches += 1
            }
            shard.tallies[key] = tally
        }
    }

    /// Everything tallied since the last drain, handed to the flusher; the shards start afresh.
    /// `salt`, when given, keys the sessions from now on (the day's, from Redis).
    func drain(salt: SessionHash? = nil, minute: Int64 = currentMinute()) -> [Key: Tally] {
        var drained: [Key: Tally] = [:]
        var dropped = 0
        for shard in shards {
            shard.withLockedValue { shard in
                drained.merge(shard.tallies) { first, _ in first }
                shard.tallies.removeAll(keepingCapacity: true)
                shard.sessionCount = 0
                dropped += shard.dropped
                shard.dropped = 0
                if let salt, salt.k0 != shard.salt.k0 || salt.k1 != shard.salt.k1 {
                    shard.salt = salt
                    shard.views.removeAll()  // keyed by the old salt: no longer found
                } else if shard.views.count >= limits.viewsRememberedPerShard / 2 {
                    shard.views = shard.views.filter { minute - $0.value < limits.viewGapMinutes }
                }
            }
        }
        if dropped > 0 { droppedCounter.increment(by: dropped) }
        return drained
    }

    private func shard(of asset: String) -> NIOLockedValueBox<Shard> {
        shards[Int(UInt(bitPattern: asset.hashValue) % UInt(Self.shardCount))]
    }

    /// The asset-minute's tally, taken out to be updated (nil, and counted, when the shard is full).
    private func take(_ key: Key, from shard: inout Shard) -> Tally? {
        if let tally = shard.tallies.removeValue(forKey: key) { return tally }
        guard shard.tallies.count < limits.assetMinutesPerShard else {
            shard.dropped += 1
            return nil
        }
        return Tally()
    }
}
