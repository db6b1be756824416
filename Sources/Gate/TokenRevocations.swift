import Foundation
import Redis

/// Where revoked playback-token ids are kept until the tokens would have expired anyway.
public protocol TokenRevocations: Sendable {
    /// Revokes token `id`, which expires at `expiresAt`.
    func revoke(id: String, expiresAt: Date) async throws
    /// Whether token `id` was revoked.
    func isRevoked(id: String) async throws -> Bool
}

/// Revocations in Redis: one sorted set, `{sg}:token:revocations`, of revoked token ids scored by
/// when the token expires plus a margin (Unix ms). Each revocation first drops the entries whose
/// time has passed, so the set never outgrows the revoked tokens still alive; every origin replica
/// sees a revocation at once.
///
/// One set without a TTL rather than a key with a TTL per token: a revocation is state, like a
/// policy, and Redis's `volatile-lru` eviction (deploy/, docs/redis.md) may drop any key with a TTL
/// under memory pressure, which here would make a revoked token work again. An origin also reloads
/// the live ones with one `ZRANGEBYSCORE` instead of scanning the keyspace.
public struct RedisTokenRevocations: TokenRevocations {
    private let client: RedisClient
    /// The sorted set.
    public let key: String
    /// How long past the token's expiry the revocation is kept, so that a replica whose clock runs
    /// a little behind still sees it.
    public let margin: TimeInterval
    private let clock: @Sendable () -> Date

    /// - Parameters:
    ///   - prefix: the hash tag's content, `sg` by default, as for the job queue's keys.
    ///   - margin: 60 s by default.
    ///   - clock: the current time; tests pass a fixed one.
    public init(client: RedisClient, prefix: String = "sg", margin: TimeInterval = 60, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.client = client
        self.key = "{\(prefix)}:token:revocations"
        self.margin = margin
        self.clock = clock
    }

    public func revoke(id: String, expiresAt: Date) async throws {
        let now = clock()
        let until = expiresAt.addingTimeInterval(margin)
        var commands = [["ZREMRANGEBYSCORE", key, "-inf", String(Self.milliseconds(now))]]
        // A token past its expiry and the margin is refused everywhere already.
        if until > now { commands.append(["ZADD", key, String(Self.milliseconds(until)), id]) }
        let replies = try await client.pipeline(commands)
        for case .error(let message) in replies { throw RedisError.server(message) }
    }

    public func isRevoked(id: String) async throws -> Bool {
        guard let until = try await revokedUntil(id: id) else { return false }
        return until > clock()
    }

    /// When the revocation of `id` may be forgotten (its token's expiry plus the margin); nil when
    /// it is not revoked.
    public func revokedUntil(id: String) async throws -> Date? {
        switch try await client.send(["ZSCORE", key, id]) {
        case .null: return nil
        case let reply:
            guard let text = reply.text, let milliseconds = Double(text) else {
                throw RedisError.unexpectedReply(command: "ZSCORE", reply: "\(reply)")
            }
            return Date(timeIntervalSince1970: milliseconds / 1000)
        }
    }

    /// Every revocation still in force: token id → when it may be forgotten.
    public func live() async throws -> [String: Date] {
        let reply = try await client.send(["ZRANGEBYSCORE", key, String(Self.milliseconds(clock())), "+inf", "WITHSCORES"])
        guard let parts = reply.array, parts.count % 2 == 0 else {
            throw RedisError.unexpectedReply(command: "ZRANGEBYSCORE", reply: "\(reply)")
        }
        var revoked: [String: Date] = [:]
        for index in stride(from: 0, to: parts.count, by: 2) {
            guard let id = parts[index].text, let milliseconds = parts[index + 1].text.flatMap(Double.init) else { continue }
            revoked[id] = Date(timeIntervalSince1970: milliseconds / 1000)
        }
        return revoked
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.up))
    }
}
