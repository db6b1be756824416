import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Per-client token buckets: each client (by IP address) may make `burst` requests at once and
/// `rate` a second after that. A refused request learns how long to wait (`Retry-After`).
///
/// Loopback clients are exempt unless ``Options/includeLoopback`` (a local CDN or a sidecar talks
/// to the origin over loopback). The buckets live in this process: behind a load balancer each
/// replica enforces the rate on its own share.
public final class RateLimiter: Sendable {
    public struct Options: Sendable {
        public var rate: Double
        public var burst: Double
        public var includeLoopback: Bool

        public init(rate: Double, burst: Double, includeLoopback: Bool = false) {
            self.rate = rate
            self.burst = max(1, burst)
            self.includeLoopback = includeLoopback
        }
    }

    struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    public let options: Options
    private let buckets = NIOLockedValueBox<[String: Bucket]>([:])

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
        let rate = options.rate, burst = options.burst
        return buckets.withLockedValue { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double(now &- bucket.updated) / 1e9
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.updated = now
            defer {
                buckets[client] = bucket
                if buckets.count > 50_000 { Self.sweep(&buckets, now: now, rate: rate, burst: burst) }
            }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return (1 - bucket.tokens) / rate
        }
    }

    /// Forgets clients whose buckets have refilled: they are as good as new.
    private static func sweep(_ buckets: inout [String: Bucket], now: UInt64, rate: Double, burst: Double) {
        buckets = buckets.filter { _, bucket in bucket.tokens + Double(now &- bucket.updated) / 1e9 * rate < burst }
    }

    /// The key a client is limited under, or nil when it is exempt.
    static func client(_ address: SocketAddress?, includeLoopback: Bool) -> String? {
        guard let address, let ip = address.ipAddress else { return includeLoopback ? "local" : nil }
        if !includeLoopback, isLoopback(ip) { return nil }
        return ip
    }

    static func isLoopback(_ ip: String) -> Bool {
        ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}
