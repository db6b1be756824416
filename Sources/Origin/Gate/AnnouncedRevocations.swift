import Foundation
import Gate
import NIOConcurrencyHelpers
import Redis

/// Playback-token revocations kept in Redis (``RedisTokenRevocations``) and announced on a channel,
/// so the key path checks a table in memory instead of asking Redis on every request.
///
/// While the announcement channel is up (``listening(_:)``), revocations arrive within a moment
/// and the local table answers; after (re)subscribing it is reloaded from Redis, since
/// announcements made while it was down were missed. While it is down, every check asks Redis.
///
/// Each revocation is remembered until its token expires, then forgotten: an expired token is
/// refused for that alone, so the table holds only revoked tokens still alive. An announcement
/// carries only the token id (what every origin version sends), so a revocation announced by
/// another origin is kept for ``provisionalHorizon`` until its expiry is read from Redis.
public final class AnnouncedRevocations: TokenRevocations, Sendable {
    let stored: RedisTokenRevocations
    let redis: RedisClient
    let keys: Keyspace
    private let clock: @Sendable () -> Date
    /// How long an announced revocation whose expiry Redis does not know is kept: longer than any
    /// sensible token lifetime.
    public static let provisionalHorizon: TimeInterval = 86_400

    private struct State {
        var listening = false
        /// Token id → the token's expiry, after which the entry is dropped.
        var revoked: [String: Date] = [:]
        /// The earliest expiry in `revoked`: nothing needs pruning before it.
        var nextPrune = Date.distantFuture

        mutating func remember(_ id: String, until: Date, now: Date) {
            if let known = revoked[id], known >= until { return }
            revoked[id] = until
            nextPrune = min(nextPrune, until)
            prune(now: now)
        }

        mutating func prune(now: Date) {
            guard now >= nextPrune else { return }
            revoked = revoked.filter { $0.value > now }
            nextPrune = revoked.values.min() ?? .distantFuture
        }
    }
    private let state = NIOLockedValueBox(State())

    /// - Parameters:
    ///   - margin: how long Redis keeps a revocation past its token's expiry (for replicas whose
    ///     clocks run behind); 60 s by default.
    ///   - clock: the current time; tests pass their own.
    public init(redis: RedisClient, keys: Keyspace, margin: TimeInterval = 60, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.redis = redis
        self.keys = keys
        self.clock = clock
        stored = RedisTokenRevocations(client: redis, prefix: keys.prefix, margin: margin, clock: clock)
    }

    public func revoke(id: String, expiresAt: Date) async throws {
        try await stored.revoke(id: id, expiresAt: expiresAt)
        let now = clock()
        state.withLockedValue { $0.remember(id, until: expiresAt, now: now) }
        try await redis.send(["PUBLISH", keys.tokenRevocations, id])
    }

    /// Whether the token `id` is revoked: from memory always while the channel is up (every
    /// revocation is announced), else only for revocations already seen; otherwise Redis says.
    public func revocation(of id: String) -> Lookup<Bool> {
        let now = clock()
        let known: Bool? = state.withLockedValue { state in
            state.prune(now: now)
            if state.revoked[id] != nil { return true }
            return state.listening ? false : nil
        }
        if let known { return .known(known) }
        let stored = self.stored
        return .load { try await stored.isRevoked(id: id) }
    }

    /// ``TokenRevocations``'s question, for the token authority: ``revocation(of:)``, waited for.
    public func isRevoked(id: String) async throws -> Bool {
        try await revocation(of: id).value
    }

    /// How many revocations are remembered (revoked tokens not yet expired, give or take one prune).
    public var count: Int { state.withLockedValue { $0.revoked.count } }

    /// Drops the revocations of tokens that have expired.
    public func prune() {
        let now = clock()
        state.withLockedValue { $0.prune(now: now) }
    }

    /// A revocation announced on the channel: remembered at once, and for exactly as long as its
    /// token lives once Redis has said how long that is.
    public func announced(_ id: String) {
        let now = clock()
        let isNew = state.withLockedValue { state -> Bool in
            guard state.revoked[id] == nil else { return false }
            state.remember(id, until: now.addingTimeInterval(Self.provisionalHorizon), now: now)
            return true
        }
        guard isNew else { return }
        Task {
            guard let until = try? await stored.revokedUntil(id: id) else { return }
            let expiry = until.addingTimeInterval(-stored.margin)
            state.withLockedValue { state in
                guard state.revoked[id] != nil else { return }
                state.revoked[id] = expiry
                state.nextPrune = min(state.nextPrune, expiry)
            }
        }
    }

    /// The channel went up or down. Coming up, the revocations still stored are loaded.
    public func listening(_ up: Bool) async {
        guard up else {
            state.withLockedValue { $0.listening = false }
            return
        }
        do {
            let live = try await stored.live()
            let now = clock()
            state.withLockedValue { state in
                for (id, until) in live { state.remember(id, until: until.addingTimeInterval(-stored.margin), now: now) }
                state.listening = true
            }
        } catch {
            state.withLockedValue { $0.listening = false }
        }
    }
}
