import ArgumentParser
import Logging
import Origin
import Redis
import Store

/// Viewer analytics' settings, `serve`'s and `dev`'s: on with Redis unless turned off.
struct AnalyticsOptions: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "Viewer analytics (with --redis): views, viewers, watch time and the players' beacons, per asset and minute.")
    var analytics = true

    @Option(help: ArgumentHelp("How long Redis keeps each minute of analytics, in whole seconds.", valueName: "duration"))
    var analyticsRetention = DurationValue(seconds: 7 * 24 * 3600)

    @Option(help: ArgumentHelp("How often the tallies go to Redis.", valueName: "duration"))
    var analyticsFlush = DurationValue(seconds: 5)

    /// The analytics and their flusher, when on; nil without Redis or when turned off.
    func flusher(queue: (redis: RedisClient, keys: Keyspace)?, store: any AssetStorage, logger: Logger) throws -> AnalyticsFlusher? {
        guard analytics, let queue else { return nil }
        guard let retention = analyticsRetention.wholeSeconds, retention >= 60 else {
            throw ValidationError("--analytics-retention must be whole seconds, a minute or more")
        }
        guard analyticsFlush.nanoseconds >= 100_000_000, analyticsFlush.seconds <= 300 else {
            throw ValidationError("--analytics-flush must be between 100ms and 5m")
        }
        return AnalyticsFlusher(
            analytics: PlaybackAnalytics(), redis: queue.redis, keys: queue.keys, store: store, retentionSeconds: retention,
            interval: .nanoseconds(Int64(analyticsFlush.nanoseconds)), logger: logger
        )
    }
}

/// `streamgate analytics ID`: an asset's viewer analytics, from Redis.
struct AnalyticsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analytics",
        abstract: "An asset's viewer analytics: views, viewers, watch time, renditions, errors and the players' reports."
    )

    @OptionGroup var queueOptions: QueueOptions

    @Argument(help: "The asset id.")
    var asset: String

    @Option(help: "The minutes to cover, ending now (at most a week).")
    var minutes: Int = 60

    @Flag(help: "Print the report as JSON (what GET /v1/assets/{id}/analytics answers).")
    var json = false

    func run() async throws {
        guard (1...AnalyticsReport.maximumMinutes).contains(minutes) else {
            throw ValidationError("--minutes must be 1…\(AnalyticsReport.maximumMinutes)")
        }
        guard (try? AssetID(asset)) != nil else { throw ValidationError("'\(asset)' is not an asset id") }
        let queue = try queueOptions.queue(connections: 1)
        let report = try await AnalyticsReport.read(asset: asset, minutes: minutes, redis: queue.redis, keys: queue.keys)
        if json { return printJSON(report) }
        let totals = report.totals
        print("\(asset), \(report.from) to \(report.to)")
        print("  views \(totals.views), unique viewers \(totals.viewers), peak concurrent \(report.peakConcurrentViewers)")
        print("  watch time \(ProgressBar.clock(totals.watchSeconds)), \(totals.requests) requests, \(totals.bytes) bytes")
        print("  errors: \(totals.clientErrors) 4xx, \(totals.serverErrors) 5xx")
        let mix = totals.renditions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("  segments by rendition: \(mix.isEmpty ? "none" : mix)")
        let experience = totals.experience
        let startup = experience.startupMilliseconds.map { String(format: "%.0f ms mean", $0) } ?? "none reported"
        print("  players: startup \(startup), \(experience.rebuffers) stalls (\(experience.rebufferMilliseconds) ms), \(experience.errors) errors, \(experience.switches) switches")
        for minute in report.minutes {
            let counts = minute.counts
            print("  \(minute.minute)  views \(counts.views)  viewers \(counts.viewers)  watch \(String(format: "%.0f", counts.watchSeconds)) s  requests \(counts.requests)")
        }
    }
}
