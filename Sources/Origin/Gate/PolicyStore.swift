import Foundation
import Gate
import NIOConcurrencyHelpers
import Redis

/// Assets' access policies, in Redis (`{sg}:policy:<asset>`, JSON): an asset without one is public.
/// Lookups are kept in memory for a few seconds and dropped at once when the asset's change is
/// announced (setting or removing a policy announces it).
public final class PolicyStore: Sendable {
    let redis: RedisClient
    let keys: Keyspace
    private let known = NIOLockedValueBox<[String: (policy: AccessPolicy?, at: UInt64)]>([:])
    private let freshness = NIOLockedValueBox<UInt64>(1_000_000_000)

    public init(redis: RedisClient, keys: Keyspace) {
        self.redis = redis
        self.keys = keys
    }

    /// The policy of `asset`, or nil when it is public: from memory while the last reading is
    /// fresh, else read from Redis. The load throws when Redis cannot answer (the caller refuses
    /// keys then: an unknown policy is not an absent one).
    public func policy(of asset: String) -> Lookup<AccessPolicy?> {
        let now = DispatchTime.now().uptimeNanoseconds
        let maximumAge = freshness.withLockedValue { $0 }
        if let entry = known.withLockedValue({ $0[asset] }), now &- entry.at < maximumAge { return .known(entry.policy) }
        return .load { try await self.read(asset) }
    }

    private func read(_ asset: String) async throws -> AccessPolicy? {
        let now = DispatchTime.now().uptimeNanoseconds
        let reply = try await redis.send(["GET", keys.policy(asset)])
        let policy: AccessPolicy?
        if case .string(let bytes) = reply {
            policy = try AccessPolicy(json: bytes)
        } else {
            policy = nil
        }
        known.withLockedValue { known in
            if known.count > 100_000 { known.removeAll() }
            known[asset] = (policy, now)
        }
        return policy
    }

    /// Sets (or with nil removes) an asset's policy, and announces the change to every origin.
    public func setPolicy(_ policy: AccessPolicy?, of asset: String) async throws {
        if let policy {
            try await redis.send(["SET", keys.policy(asset), policy.canonicalJSON])
        } else {
            try await redis.send(["DEL", keys.policy(asset)])
        }
        forget(asset)
        try await redis.announceAssetChange(asset, in: keys)
    }

    public func forget(_ asset: String) {
        _ = known.withLockedValue { $0.removeValue(forKey: asset) }
    }

    /// With announcements up, lookups are kept 30 s (a safety net); without, 1 s.
    public func announcements(listening: Bool) {
        freshness.withLockedValue { $0 = listening ? 30_000_000_000 : 1_000_000_000 }
        known.withLockedValue { $0.removeAll() }
    }
}
