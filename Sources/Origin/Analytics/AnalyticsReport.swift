import Foundation
import Redis

/// An asset's viewer analytics over its last minutes, read from Redis: per minute and in all.
/// What `GET /v1/assets/{id}/analytics` answers and `streamgate analytics ID` prints.
public struct AnalyticsReport: Codable, Sendable, Equatable {
    /// The players' own reports (beacons).
    public struct Experience: Codable, Sendable, Equatable {
        public var startups = 0
        /// The mean time to the first frame, when any startup was reported.
        public var startupMilliseconds: Double?
        public var rebuffers = 0
        public var rebufferMilliseconds = 0
        public var errors = 0
        public var switches = 0

        enum CodingKeys: String, CodingKey {
            case startups, startupMilliseconds = "startup_ms_mean", rebuffers, rebufferMilliseconds = "rebuffer_ms", errors, switches
        }
    }

    public struct Counts: Codable, Sendable, Equatable {
        public var requests = 0
        public var views = 0
        /// In a minute: the sessions that played in it. In the totals: the distinct sessions of
        /// the whole span.
        public var viewers = 0
        public var watchSeconds = 0.0
        public var bytes = 0
        public var clientErrors = 0
        public var serverErrors = 0
        /// Segments served, per rendition.
        public var renditions: [String: Int] = [:]
        public var experience = Experience()

        enum CodingKeys: String, CodingKey {
            case requests, views, viewers, watchSeconds = "watch_s", bytes, clientErrors = "errors_4xx", serverErrors = "errors_5xx"
            case renditions, experience
        }
    }

    public struct Minute: Codable, Sendable, Equatable {
        /// The minute's start, ISO 8601.
        public var minute: String
        public var counts: Counts
    }

    public var asset: String
    public var from: String
    public var to: String
    /// Only the minutes something happened in, oldest first.
    public var minutes: [Minute]
    public var totals: Counts
    /// The most sessions any one minute had.
    public var peakConcurrentViewers: Int

    enum CodingKeys: String, CodingKey {
        case asset, from, to, minutes, totals, peakConcurrentViewers = "peak_concurrent_viewers"
    }

    /// The longest span a report covers: a week of minutes.
    public static let maximumMinutes = 7 * 24 * 60

    /// Reads `asset`'s last `minutes` minutes (ending with the current one).
    public static func read(
        asset: String, minutes: Int, redis: RedisClient, keys: Keyspace, now: Date = Date()
    ) async throws(RedisError) -> AnalyticsReport {
        let span = min(max(1, minutes), maximumMinutes)
        let last = Int64(now.timeIntervalSince1970) / 60
        let first = last - Int64(span) + 1
        var commands: [[String]] = []
        for minute in first...last {
            commands.append(["HGETALL", keys.analyticsCounts(asset, minute: minute)])
            commands.append(["PFCOUNT", keys.analyticsSessions(asset, minute: minute)])
        }
        var replies: [RedisValue] = []
        for start in stride(from: 0, to: commands.count, by: 2000) {
            replies += try await redis.pipeline(Array(commands[start..<min(commands.count, start + 2000)]))
        }
        var report = AnalyticsReport(
            asset: asset, from: iso(first), to: iso(last + 1), minutes: [], totals: Counts(), peakConcurrentViewers: 0
        )
        var active: [String] = []
        var startupMilliseconds = 0
        for (offset, minute) in (first...last).enumerated() {
            let fields = replies[2 * offset].fieldMap
            let viewers = Int(replies[2 * offset + 1].int ?? 0)
            guard !fields.isEmpty || viewers > 0 else { continue }
            var counts = Counts(fields)
            counts.viewers = viewers
            if viewers > 0 { active.append(keys.analyticsSessions(asset, minute: minute)) }
            startupMilliseconds += Int(fields["qoe_startup_ms"] ?? "") ?? 0
            report.minutes.append(Minute(minute: iso(minute), counts: counts))
            report.totals.add(counts)
            report.peakConcurrentViewers = max(report.peakConcurrentViewers, viewers)
        }
        if report.totals.experience.startups > 0 {
            report.totals.experience.startupMilliseconds = Double(startupMilliseconds) / Double(report.totals.experience.startups)
        }
        // Distinct over the span: Redis merges the minutes' HyperLogLogs.
        if !active.isEmpty { report.totals.viewers = Int(try await redis.send(["PFCOUNT"] + active).int ?? 0) }
        return report
    }

    private static func iso(_ minute: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(minute * 60)))
    }
}

extension AnalyticsReport.Counts {
    /// A minute's counts from its hash's fields (what the flusher writes).
    init(_ fields: [String: String]) {
        func number(_ name: String) -> Int { Int(fields[name] ?? "") ?? 0 }
        self.init()
        requests = number("requests")
        views = number("views")
        bytes = number("bytes")
        clientErrors = number("errors_4xx")
        serverErrors = number("errors_5xx")
        watchSeconds = Double(number("watch_ms")) / 1000
        for (field, value) in fields where field.hasPrefix("segments:") {
            renditions[String(field.dropFirst("segments:".count))] = Int(value) ?? 0
        }
        experience.startups = number("qoe_startups")
        if experience.startups > 0 { experience.startupMilliseconds = Double(number("qoe_startup_ms")) / Double(experience.startups) }
        experience.rebuffers = number("qoe_rebuffers")
        experience.rebufferMilliseconds = number("qoe_rebuffer_ms")
        experience.errors = number("qoe_errors")
        experience.switches = number("qoe_switches")
    }

    /// Adds a minute into a total (viewers and the startup mean are worked out over the span apart).
    mutating func add(_ other: Self) {
        requests += other.requests
        views += other.views
        bytes += other.bytes
        clientErrors += other.clientErrors
        serverErrors += other.serverErrors
        watchSeconds += other.watchSeconds
        renditions.merge(other.renditions, uniquingKeysWith: +)
        experience.startups += other.experience.startups
        experience.rebuffers += other.experience.rebuffers
        experience.rebufferMilliseconds += other.experience.rebufferMilliseconds
        experience.errors += other.experience.errors
        experience.switches += other.experience.switches
    }
}
