import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Per-client token buckets: each client may make `burst` requests at once and `rate` a second
/// after that. A refused request learns how long to wait (`Retry-After`).
///
/// A client is an IPv4 address or an IPv6 /64: one subscriber line or host usually gets a whole
/// /64, so counting single IPv6 addresses would hand an attacker 2^64 fresh buckets. An
/// IPv4-mapped IPv6 address counts as its IPv4 address.
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
        var buckets: [String: Bucket] = [:]
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
    func admit(client: String?) -> Double? {
        guard let client else { return nil }
        return admit(client: client, now: DispatchTime.now().uptimeNanoseconds)
    }

    func admit(client: String, now: UInt64) -> Double? {
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

    /// The key a client is limited under, or nil when it is exempt.
    static func client(_ address: SocketAddress?, includeLoopback: Bool) -> String? {
        switch address {
        case .v4(let v4):
            let bytes = withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
            return ipv4(bytes[0..<4], includeLoopback: includeLoopback)
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                return ipv4(bytes[12..<16], includeLoopback: includeLoopback)
            }
            if bytes[0..<15].allSatisfy({ $0 == 0 }), bytes[15] == 1 { return includeLoopback ? "::1" : nil }
            let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            return groups.joined(separator: ":") + "::/64"
        default:
            // No address (a test's router) or a Unix socket: on this machine.
            return includeLoopback ? "local" : nil
        }
    }

    private static func ipv4(_ bytes: ArraySlice<UInt8>, includeLoopback: Bool) -> String? {
        if bytes.first == 127, !includeLoopback { return nil }
        return bytes.map(String.init).joined(separator: ".")
    }
}
