import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import Redis
import Store
import Vault

/// Writes ``PlaybackAnalytics``' tallies to Redis every few seconds, in one pipeline: counts with
/// HINCRBY, sessions with PFADD, every key expiring after the retention. Watch time is worked out
/// here, off the request path: a rendition's segments served times its segments' mean length,
/// from the published version's `asset.json`.
public final class AnalyticsFlusher: Sendable {
    public let analytics: PlaybackAnalytics
    private let redis: RedisClient
    private let keys: Keyspace
    private let store: any AssetStorage
    private let retentionSeconds: Int
    private let interval: Duration
    private let logger: Logger
    private let salt = NIOLockedValueBox<(day: Int64, hash: SessionHash)?>(nil)
    /// Seconds a segment lasts, per rendition, of each asset's published version (bounded).
    private let segmentSeconds = NIOLockedValueBox<[String: (version: String, seconds: [String: Double])]>([:])
    private let failures = Counter(label: "streamgate_analytics_flush_failures_total")

    public init(
        analytics: PlaybackAnalytics, redis: RedisClient, keys: Keyspace, store: any AssetStorage, retentionSeconds: Int,
        interval: Duration = .seconds(5), logger: Logger
    ) {
        self.analytics = analytics
        self.redis = redis
        self.keys = keys
        self.store = store
        self.retentionSeconds = retentionSeconds
        self.interval = interval
        self.logger = logger
    }

    /// Takes the day's salt from Redis before the first request is counted (a session hashed under
    /// a salt of this process's own would count twice once the shared one arrives).
    public func prepare() async {
        do {
            _ = analytics.drain(salt: try await currentSalt())
        } catch {
            logger.warning("viewer analytics: no session salt from Redis yet (\(error)); sessions until the first flush may count twice")
        }
    }

    /// Flushes every interval until cancelled, then once more.
    public func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            await flushLogging()
        }
        await flushLogging()
    }

    private func flushLogging() async {
        do {
            try await flush()
        } catch {
            failures.increment()
            logger.warning("viewer analytics not written: \(error)")
        }
    }

    /// Writes what was tallied since the last flush; what Redis refuses is lost (and counted).
    public func flush() async throws {
        let daySalt = try await currentSalt()
        let tallies = analytics.drain(salt: daySalt)
        guard !tallies.isEmpty else { return }
        var commands: [[String]] = []
        let ttl = String(retentionSeconds)
        for (key, tally) in tallies {
            let counts = keys.analyticsCounts(key.asset, minute: key.minute)
            var fields: [(String, Int)] = [
                ("requests", tally.requests), ("views", tally.views), ("bytes", tally.bytes),
                ("errors_4xx", tally.clientErrors), ("errors_5xx", tally.serverErrors),
                ("qoe_startups", tally.experience.startups), ("qoe_startup_ms", tally.experience.startupMilliseconds),
                ("qoe_rebuffers", tally.experience.rebuffers), ("qoe_rebuffer_ms", tally.experience.rebufferMilliseconds),
                ("qoe_errors", tally.experience.errors), ("qoe_switches", tally.experience.switches),
            ]
            fields += tally.segments.map { ("segments:\($0.key)", $0.value) }
            if !tally.segments.isEmpty, let seconds = await segmentSeconds(of: key.asset) {
                let watched = tally.segments.reduce(0.0) { $0 + Double($1.value) * (seconds[$1.key] ?? 0) }
                fields.append(("watch_ms", Int((watched * 1000).rounded())))
            }
            for (field, value) in fields where value != 0 { commands.append(["HINCRBY", counts, field, String(value)]) }
            commands.append(["EXPIRE", counts, ttl])
            if !tally.sessions.isEmpty {
                let sessions = keys.analyticsSessions(key.asset, minute: key.minute)
                let ids = tally.sessions.map { String($0, radix: 16) }
                for start in stride(from: 0, to: ids.count, by: 1000) {
                    commands.append(["PFADD", sessions] + ids[start..<min(ids.count, start + 1000)])
                }
                commands.append(["EXPIRE", sessions, ttl])
            }
        }
        for start in stride(from: 0, to: commands.count, by: 2000) {
            for reply in try await redis.pipeline(Array(commands[start..<min(commands.count, start + 2000)])) {
                if case .error(let message) = reply { throw RedisError.unexpectedReply(command: "analytics flush", reply: message) }
            }
        }
    }

    /// The day's session salt: the one in Redis, set there first when this origin is the first.
    private func currentSalt() async throws -> SessionHash {
        let day = Int64(time(nil)) / 86400
        if let known = salt.withLockedValue({ $0 }), known.day == day { return known.hash }
        let key = keys.analyticsSalt(day: day)
        _ = try await redis.send(["SET", key, Digest.hex(try SecureRandom.bytes(16)), "NX", "EX", String(2 * 86400)])
        guard let text = try await redis.send(["GET", key]).text, !text.isEmpty else {
            throw RedisError.unexpectedReply(command: "GET \(key)", reply: "no salt")
        }
        // Whatever the text, its digest is a full-strength key.
        let hash = SessionHash(bytes: Array(Digest.sha256(Array(text.utf8)).prefix(16)))
        salt.withLockedValue { $0 = (day, hash) }
        return hash
    }

    /// Seconds a segment lasts per rendition of `asset`'s published version, from its `asset.json`.
    private func segmentSeconds(of asset: String) async -> [String: Double]? {
        guard let id = try? AssetID(asset), let version = try? await store.version(nil, of: id) else { return nil }
        if let known = segmentSeconds.withLockedValue({ $0[asset] }), known.version == version.version { return known.seconds }
        guard let buffer = try? await store.readBuffer("asset.json", of: version, maximumBytes: 1 << 20),
              let summary = try? JSONDecoder().decode(TranscodeSummary.self, from: Data(buffer: buffer))
        else { return nil }
        // Watching is video: an audio rendition's segments count only for an asset without any.
        let hasVideo = summary.renditions.contains { $0.width != nil }
        var seconds: [String: Double] = [:]
        for rendition in summary.renditions where rendition.segments > 0 && (rendition.width != nil || !hasVideo) {
            seconds[rendition.name] = summary.durationSeconds / Double(rendition.segments)
        }
        segmentSeconds.withLockedValue { cache in
            if cache.count >= 4096 { cache.removeAll() }
            cache[asset] = (version.version, seconds)
        }
        return seconds
    }
}
