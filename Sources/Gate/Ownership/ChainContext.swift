import Foundation
import NIOConcurrencyHelpers
import Ethereum

/// What a service knows about one chain: its client, the follower's view, the L1 cache and its
/// indexes, the misses waiting to be evaluated.
final class ChainContext: Sendable {
    let rpc: EthereumRPC
    let state = NIOLockedValueBox(State())

    struct Head {
        var number: UInt64
        var timestamp: UInt64
        var at: ContinuousClock.Instant
    }

    struct Entry {
        var verdict: CachedVerdict
        var expires: ContinuousClock.Instant
    }

    struct State {
        // follower
        var head: Head?
        var minValidBlock: UInt64 = 0
        var addressLogBlock: [EthereumAddress: (block: UInt64, at: ContinuousClock.Instant)] = [:]
        var tokenLogBlock: [String: (block: UInt64, at: ContinuousClock.Instant)] = [:]
        var contracts: Set<EthereumAddress> = []
        var generation = 0
        var knownPolicies: Set<String> = []
        // L1
        var entries: [String: Entry] = [:]
        var byAddress: [EthereumAddress: Set<String>] = [:]
        var byToken: [String: Set<String>] = [:]
        var lastSweep = ContinuousClock.now
        // single-flight and coalescing
        var inflight: [String: [CheckedContinuation<Result<OwnershipAnswer, OwnershipError>?, Never>]] = [:]
        var pending: [OwnershipService.Pending] = []
        var flushScheduled = false
        /// Rounds of evaluations with the chain now.
        var roundsInFlight = 0
    }

    init(rpc: EthereumRPC) { self.rpc = rpc }

    /// The follower's head when it is recent enough to read at.
    func trustedHead(staleness: Duration) -> UInt64? {
        state.withLockedValue { state in
            guard let head = state.head, ContinuousClock.now - head.at <= staleness else { return nil }
            return head.number
        }
    }

    /// Whether a follower has started on this chain (then answers of an unknown block are not kept).
    var hasFollower: Bool { state.withLockedValue { $0.minValidBlock > 0 } }

    func register(policyID: String, contracts: [EthereumAddress]) {
        state.withLockedValue { state in
            guard state.knownPolicies.insert(policyID).inserted else { return }
            for contract in contracts where state.contracts.insert(contract).inserted { state.generation += 1 }
        }
    }

    func lookup(_ key: String, now: ContinuousClock.Instant, wall: Date) -> CachedVerdict? {
        state.withLockedValue { state in
            guard let entry = state.entries[key] else { return nil }
            guard entry.expires > now, Self.isCurrent(entry.verdict, state: state, wall: wall) else {
                state.entries[key] = nil
                return nil
            }
            return entry.verdict
        }
    }

    func isCurrent(_ verdict: CachedVerdict, wall: Date) -> Bool {
        state.withLockedValue { Self.isCurrent(verdict, state: $0, wall: wall) }
    }

    /// Whether no log after the answer's block concerns it, and its rental has not expired.
    static func isCurrent(_ verdict: CachedVerdict, state: State, wall: Date) -> Bool {
        guard verdict.block >= state.minValidBlock else { return false }
        for address in verdict.dependencies {
            if let logged = state.addressLogBlock[address], logged.block > verdict.block { return false }
        }
        for token in verdict.tokens {
            if let logged = state.tokenLogBlock[token], logged.block > verdict.block { return false }
        }
        if let expiry = verdict.rentalExpiry {
            // userOf answers the user while block.timestamp <= expires: the chain's clock decides,
            // which may run ahead of the wall clock.
            let chainNow = max(state.head?.timestamp ?? 0, UInt64(max(0, wall.timeIntervalSince1970)))
            if chainNow > expiry { return false }
        }
        return true
    }

    /// Stores an answer unless a log newer than its block already concerns it; returns whether it
    /// was stored (and may go to L2).
    @discardableResult
    func store(_ key: String, verdict: CachedVerdict, ttl: Duration, maxEntries: Int) -> Bool {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            guard Self.isCurrent(verdict, state: state, wall: Date()) else { return false }
            state.entries[key] = Entry(verdict: verdict, expires: now + ttl)
            for address in verdict.dependencies { state.byAddress[address, default: []].insert(key) }
            for token in verdict.tokens { state.byToken[token, default: []].insert(key) }
            if state.entries.count > maxEntries || now - state.lastSweep > .seconds(30) {
                Self.sweep(&state, now: now, maxEntries: maxEntries)
            }
            return true
        }
    }

    /// Drops expired answers, then arbitrary ones down to 90 % of the bound, and rebuilds the
    /// indexes (which otherwise keep the keys of expired answers).
    private static func sweep(_ state: inout State, now: ContinuousClock.Instant, maxEntries: Int) {
        state.lastSweep = now
        state.entries = state.entries.filter { $0.value.expires > now }
        if state.entries.count > maxEntries {
            let excess = state.entries.count - maxEntries * 9 / 10
            for key in state.entries.keys.prefix(excess) { state.entries[key] = nil }
        }
        var byAddress: [EthereumAddress: Set<String>] = [:]
        var byToken: [String: Set<String>] = [:]
        for (key, entry) in state.entries {
            for address in entry.verdict.dependencies { byAddress[address, default: []].insert(key) }
            for token in entry.verdict.tokens { byToken[token, default: []].insert(key) }
        }
        state.byAddress = byAddress
        state.byToken = byToken
    }

    func invalidate(addresses: [EthereumAddress: UInt64], tokens: [String: UInt64]) {
        let now = ContinuousClock.now
        state.withLockedValue { state in
            for (address, block) in addresses {
                state.addressLogBlock[address] = (max(block, state.addressLogBlock[address]?.block ?? 0), now)
                for key in state.byAddress.removeValue(forKey: address) ?? [] { state.entries[key] = nil }
            }
            for (token, block) in tokens {
                state.tokenLogBlock[token] = (max(block, state.tokenLogBlock[token]?.block ?? 0), now)
                for key in state.byToken.removeValue(forKey: token) ?? [] { state.entries[key] = nil }
            }
        }
    }

    /// Forgets every cached answer read before `block` (a reorganisation, or a follower too far
    /// behind to read every log).
    func invalidateAll(before block: UInt64) {
        state.withLockedValue { state in
            state.minValidBlock = max(state.minValidBlock, block)
            state.entries = [:]
            state.byAddress = [:]
            state.byToken = [:]
        }
    }

    /// The contracts to follow and their generation.
    func followedContracts() -> (contracts: [EthereumAddress], generation: Int) {
        state.withLockedValue { (Array($0.contracts), $0.generation) }
    }

    /// Publishes the follower's head, unless contracts were added since `generation` (their logs
    /// must be read first). Also forgets log blocks older than `retention`.
    func publish(head: UInt64, timestamp: UInt64, generation: Int, retention: Duration) -> Bool {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            guard state.generation == generation else { return false }
            state.head = Head(number: head, timestamp: timestamp, at: now)
            if state.addressLogBlock.count + state.tokenLogBlock.count > 10_000 || Int.random(in: 0..<64) == 0 {
                state.addressLogBlock = state.addressLogBlock.filter { now - $0.value.at < retention }
                state.tokenLogBlock = state.tokenLogBlock.filter { now - $0.value.at < retention }
            }
            return true
        }
    }

    func setStartingPoint(_ block: UInt64) {
        state.withLockedValue { $0.minValidBlock = max($0.minValidBlock, block) }
    }
}
