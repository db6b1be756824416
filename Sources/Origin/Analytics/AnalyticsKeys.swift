import Redis

/// Where viewer analytics live in Redis: per asset and per minute (the Unix epoch's), a hash of
/// counts and a HyperLogLog of the minute's sessions; and the day's session salt.
extension Keyspace {
    /// `requests`, `views`, `bytes`, `errors_4xx`, `errors_5xx`, `watch_ms`, `segments:<rendition>`,
    /// and the players' reports: `qoe_startups`, `qoe_startup_ms`, `qoe_rebuffers`,
    /// `qoe_rebuffer_ms`, `qoe_errors`, `qoe_switches`.
    public func analyticsCounts(_ asset: String, minute: Int64) -> String { "\(tag):an:c:\(asset):\(minute)" }
    /// The minute's sessions (concurrent viewers; merged over minutes, unique viewers).
    public func analyticsSessions(_ asset: String, minute: Int64) -> String { "\(tag):an:s:\(asset):\(minute)" }
    /// The key sessions are hashed with on `day` (days since the epoch): 32 hex digits, set by
    /// the first origin to need it, gone after two days.
    public func analyticsSalt(day: Int64) -> String { "\(tag):an:salt:\(day)" }
}
