import Foundation
import Gate
import Jobs
import NIOConcurrencyHelpers

/// Playback-token revocations kept in Redis (``RedisTokenRevocations``) and announced on a channel,
/// so the key path checks a set in memory instead of asking Redis on every request.
///
/// While the announcement channel is up (``listening(_:)``), revocations arrive within a moment
/// and the local set answers; after (re)subscribing the set is reloaded from Redis, since
/// announcements made while it was down were missed. While it is down, every check asks Redis.
public final class AnnouncedRevocations: TokenRevocations, Sendable {
    let stored: RedisTokenRevocations
    let redis: RedisClient
    let keys: QueueKeys
    private struct State {
        var listening = false
        var revoked: Set<String> = []
    }
    private let state = NIOLockedValueBox(State())

    public init(redis: RedisClient, keys: QueueKeys) {
        self.redis = redis
        self.keys = keys
        stored = RedisTokenRevocations(client: redis, prefix: keys.prefix)
    }

    public func revoke(id: String, expiresAt: Date) async throws {
        try await stored.revoke(id: id, expiresAt: expiresAt)
        state.withLockedValue { _ = $0.revoked.insert(id) }
        try await redis.send(["PUBLISH", keys.tokenRevocations, id])
    }

    public func isRevoked(id: String) async throws -> Bool {
        if let known = isRevokedFromMemory(id: id) { return known }
        return try await stored.isRevoked(id: id)
    }

    /// ``isRevoked(id:)`` when memory can answer: always while the channel is up (every
    /// revocation is announced), else only for revocations already seen; nil: ask Redis.
    public func isRevokedFromMemory(id: String) -> Bool? {
        let (listening, known) = state.withLockedValue { ($0.listening, $0.revoked.contains(id)) }
        if known { return true }
        return listening ? false : nil
    }

    /// A revocation announced on the channel.
    public func announced(_ id: String) {
        state.withLockedValue { _ = $0.revoked.insert(id) }
    }

    /// The channel went up or down. Coming up, the revocations still stored are loaded.
    public func listening(_ up: Bool) async {
        guard up else {
            state.withLockedValue { $0.listening = false }
            return
        }
        do {
            var ids: Set<String> = []
            var cursor = "0"
            let prefix = stored.key("")
            repeat {
                let reply = try await redis.send(["SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"])
                guard let parts = reply.array, parts.count == 2, let next = parts[0].text else { break }
                cursor = next
                for key in parts[1].array ?? [] {
                    if let text = key.text, text.hasPrefix(prefix) { ids.insert(String(text.dropFirst(prefix.count))) }
                }
            } while cursor != "0"
            state.withLockedValue {
                $0.revoked.formUnion(ids)
                $0.listening = true
            }
        } catch {
            state.withLockedValue { $0.listening = false }
        }
    }
}
