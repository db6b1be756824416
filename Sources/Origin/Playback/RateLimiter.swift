import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Per-client token buckets: each client may make `burst` requests at once and `rate` a second
/// after that. A refused request learns how long to wait (`Retry-After`).
///
/// A client is a ``ClientKey``: an IPv4 address or an IPv6 /64.
///
/// Loopback clients are exempt unless ``Options/includeLoopback`` (a local CDN or a sidecar talks
/// to the origin over loopback). The buckets live in this process: behind a load balancer each
/// replica enforces the rate on its own share. The table is bounded: buckets that have refilled
/// are forgotten every ``sweepInterval`` (they are as good as new), and past
/// ``Options/maximumClients`` the least recently seen are forgotten too.
public final class RateLimiter: Sendable {
    public struct Options: Sendable {
        public var rate: Double
        public var burst: Double
        public var includeLoopback: Bool
        /// How many clients the table may hold.
        public var maximumClients: Int

        public init(rate: Double, burst: Double, includeLoopback: Bool = false, maximumClients: Int = 100_000) {
            self.rate = rate
            self.burst = max(1, burst)
            self.includeLoopback = includeLoopback
            self.maximumClients = max(16, maximumClients)
        }
    }

    struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    struct Table {
        var buckets: [ClientKey: Bucket] = [:]
        var nextSweep: UInt64 = 0
    }

    /// How often refilled buckets are forgotten, nanoseconds.
    static let sweepInterval: UInt64 = 10_000_000_000

    public let options: Options
    private let table = NIOLockedValueBox(Table())

    public init(options: Options) {
        self.options = options
    }

    /// nil when the request may go ahead; else the seconds until it would be allowed.
    public func admit(_ address: SocketAddress?) -> Double? {
        guard let client = Self.client(address, includeLoopback: options.includeLoopback) else { return nil }
        return admit(client: client, now: DispatchTime.now().uptimeNanoseconds)
    }

    /// ``admit(_:)`` for a client already keyed with ``client(_:includeLoopback:)`` (once per
    /// connection): nil, exempt, is always admitted.
    func admit(client: ClientKey?) -> Double? {
        guard let client else { return nil }
        return admit(client: client, now: DispatchTime.now().uptimeNanoseconds)
    }

    func admit(client: ClientKey, now: UInt64) -> Double? {
        let rate = options.rate, burst = options.burst, maximum = options.maximumClients
        return table.withLockedValue { table in
            if now >= table.nextSweep || table.buckets.count >= maximum {
                Self.sweep(&table, now: now, rate: rate, burst: burst, maximum: maximum)
            }
            var bucket = table.buckets[client] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double(now &- bucket.updated) / 1e9
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.updated = now
            defer { table.buckets[client] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return (1 - bucket.tokens) / rate
        }
    }

    /// How many clients the table holds now.
    var clientCount: Int { table.withLockedValue { $0.buckets.count } }

    /// Forgets clients whose buckets have refilled; if the table is still full, forgets the least
    /// recently seen down to three quarters of it, so a full table costs one sort per quarter of
    /// new clients rather than a scan per request. A forgotten client starts again with a full
    /// bucket, which it would have had anyway (refilled) or soon (idle longest).
    private static func sweep(_ table: inout Table, now: UInt64, rate: Double, burst: Double, maximum: Int) {
        table.nextSweep = now &+ sweepInterval
        table.buckets = table.buckets.filter { _, bucket in bucket.tokens + Double(now &- bucket.updated) / 1e9 * rate < burst }
        guard table.buckets.count >= maximum else { return }
        let keep = maximum * 3 / 4
        let newest = table.buckets.sorted { $0.value.updated > $1.value.updated }.prefix(keep)
        table.buckets = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }

    /// The key a client is limited under, or nil when it is exempt (this machine, by default).
    static func client(_ address: SocketAddress?, includeLoopback: Bool) -> ClientKey? {
        let client = ClientKey(address) ?? .local
        return client.isLoopback && !includeLoopback ? nil : client
    }
}
