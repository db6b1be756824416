import Foundation
import Jobs

/// Where revoked playback-token ids are kept until the tokens would have expired anyway.
public protocol TokenRevocations: Sendable {
    /// Revokes token `id`, which expires at `expiresAt`.
    func revoke(id: String, expiresAt: Date) async throws
    /// Whether token `id` was revoked.
    func isRevoked(id: String) async throws -> Bool
}

/// Revocations in Redis: one key per revoked token, `{sg}:token:revoked:<id>`, set with a TTL of the
/// token's remaining lifetime plus a margin, and checked with `EXISTS`. The list never outgrows the
/// tokens still alive, and every origin replica sees a revocation at once.
public struct RedisTokenRevocations: TokenRevocations {
    private let client: RedisClient
    private let tag: String
    private let margin: TimeInterval
    private let clock: @Sendable () -> Date

    /// - Parameters:
    ///   - prefix: the hash tag's content, `sg` by default, as for the job queue's keys.
    ///   - margin: how long past the token's expiry the revocation is kept, so that a replica whose
    ///     clock runs a little behind still sees it; 60 s by default.
    ///   - clock: the current time; tests pass a fixed one.
    public init(client: RedisClient, prefix: String = "sg", margin: TimeInterval = 60, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.client = client
        self.tag = "{\(prefix)}"
        self.margin = margin
        self.clock = clock
    }

    /// The key marking token `id` revoked.
    public func key(_ id: String) -> String { "\(tag):token:revoked:\(id)" }

    public func revoke(id: String, expiresAt: Date) async throws {
        let milliseconds = Int64(((expiresAt.timeIntervalSince(clock()) + margin) * 1000).rounded(.up))
        // A token past its expiry and the margin is refused everywhere already.
        guard milliseconds > 0 else { return }
        try await client.send(["SET", key(id), "1", "PX", String(milliseconds)])
    }

    public func isRevoked(id: String) async throws -> Bool {
        let command = ["EXISTS", key(id)]
        guard let count = try await client.send(command).int else {
            throw RedisError.unexpectedReply(command: "EXISTS", reply: "not an integer")
        }
        return count > 0
    }
}
