import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import Redis
import Ethereum

/// Answers "may this account watch under this policy?" from the chain, cached.
///
/// - Caches: L1 in process, L2 in Redis (shared by replicas), both per (chain, address, policy id),
///   grants for ``OwnershipConfiguration/grantTTL``, denials for ``OwnershipConfiguration/denialTTL``.
///   Concurrent misses of one key make one evaluation (single-flight).
/// - Coalescing: misses for different keys arriving within ``OwnershipConfiguration/coalescingWindow``
///   are evaluated together, their reads deduplicated and sent as one Multicall3 `aggregate3` (when
///   configured on the chain's ``EthereumRPC``) or one JSON-RPC batch, all at one block. While a
///   round is with the chain, new misses wait for it to end and then go together in the next one,
///   so a burst of misses costs a few round trips however they are spread in time (a full round,
///   ``OwnershipConfiguration/maxEvaluationsPerRound``, goes at once, up to 4 at a time).
/// - Freshness: with an ``OwnershipFollower`` running, evaluations read at the follower's last
///   processed block (never older), and the follower drops every cached answer that a new log
///   concerns (transfers, rentals, delegations: the viewer, the vaults looked at, the rented token).
///   A cached answer read at a block older than a log that concerns it is never served, whichever
///   replica cached it. A grant through a rental lapses at the rental's expiry (chain time).
public final class OwnershipService: Sendable {
    public let configuration: OwnershipConfiguration
    let chains: [UInt64: ChainContext]
    let redis: RedisClient?
    let logger: Logger
    private let counters: [String: Counter]
    private let policyIDs = NIOLockedValueBox<[AccessPolicy: String]>([:])

    /// - Parameters:
    ///   - rpcs: one client per chain (their configurations name the chains).
    ///   - redis: the L2 cache; nil keeps answers in this process only.
    public init(rpcs: [EthereumRPC], redis: RedisClient? = nil, configuration: OwnershipConfiguration = OwnershipConfiguration(), logger: Logger = Logger(label: "streamgate.gate.ownership")) {
        self.configuration = configuration
        self.redis = redis
        self.logger = logger
        var chains: [UInt64: ChainContext] = [:]
        for rpc in rpcs { chains[rpc.configuration.chainID] = ChainContext(rpc: rpc) }
        self.chains = chains
        var counters: [String: Counter] = [:]
        for source in ["l1", "l2", "chain", "none"] {
            for result in ["granted", "denied", "unavailable"] {
                counters["\(source)|\(result)"] = Counter(label: "streamgate_gate_ownership_checks_total", dimensions: [("source", source), ("result", result)])
            }
        }
        self.counters = counters
    }

    /// The chains this service answers for.
    public var chainIDs: [UInt64] { chains.keys.sorted() }

    /// The client of `chainID`.
    public func rpc(chainID: UInt64) -> EthereumRPC? { chains[chainID]?.rpc }

    func chain(_ chainID: UInt64) -> ChainContext? { chains[chainID] }

    /// Whether `address` meets `policy` now.
    public func check(address: EthereumAddress, policy: AccessPolicy) async throws(OwnershipError) -> OwnershipAnswer {
        guard let chain = chains[policy.chainID] else {
            count("none", "unavailable")
            throw .unsupportedChain(policy.chainID)
        }
        let policyID = policyID(of: policy)
        let key = Self.cacheKey(address, policyID)
        while true {
            if let answer = l1Answer(chain, key) { return answer }
            // Single-flight: the first miss of a key evaluates; the others wait for its answer.
            let leader = chain.state.withLockedValue { state in
                if state.inflight[key] == nil {
                    state.inflight[key] = []
                    return true
                }
                return false
            }
            if leader {
                let result = await lead(chain: chain, key: key, address: address, policy: policy, policyID: policyID)
                let waiters = chain.state.withLockedValue { $0.inflight.removeValue(forKey: key) } ?? []
                for waiter in waiters { waiter.resume(returning: result) }
                return try finish(result)
            }
            let shared: Result<OwnershipAnswer, OwnershipError>? = await withCheckedContinuation { continuation in
                let waiting = chain.state.withLockedValue { state in
                    guard state.inflight[key] != nil else { return false }
                    state.inflight[key]!.append(continuation)
                    return true
                }
                if !waiting { continuation.resume(returning: nil) }
            }
            if let shared { return try finish(shared) }
        }
    }

    /// The answer L1 holds for (`address`, `policy`) now, without waiting; nil when there is none
    /// (``check(address:policy:)`` would go to L2 or the chain). Counted as an L1 check.
    public func cachedAnswer(address: EthereumAddress, policy: AccessPolicy) -> OwnershipAnswer? {
        guard let chain = chains[policy.chainID] else { return nil }
        return l1Answer(chain, Self.cacheKey(address, policyID(of: policy)))
    }

    /// The cache key of (`address`, policy): L1's, and L2's after the prefix.
    private static func cacheKey(_ address: EthereumAddress, _ policyID: String) -> String {
        "\(address.lowercasedHex):\(policyID)"
    }

    /// L1's current answer for `key`, counted; nil when it has none (or only a stale one).
    private func l1Answer(_ chain: ChainContext, _ key: String) -> OwnershipAnswer? {
        guard let verdict = chain.lookup(key, now: .now, wall: Date()) else { return nil }
        count("l1", verdict.granted ? "granted" : "denied")
        return OwnershipAnswer(granted: verdict.granted, reason: verdict.reason, source: .l1, block: verdict.block == 0 ? nil : verdict.block)
    }

    /// ``AccessPolicy/policyID``, remembered: hashing a policy costs a small fraction of
    /// encoding it and taking its Keccak-256, and this runs on every key request.
    private func policyID(of policy: AccessPolicy) -> String {
        if let known = policyIDs.withLockedValue({ $0[policy] }) { return known }
        let id = policy.policyID
        policyIDs.withLockedValue { ids in
            if ids.count >= 4096 { ids.removeAll(keepingCapacity: true) }
            ids[policy] = id
        }
        return id
    }

    private func finish(_ result: Result<OwnershipAnswer, OwnershipError>) throws(OwnershipError) -> OwnershipAnswer {
        switch result {
        case .success(let answer): return answer
        case .failure(let error): throw error
        }
    }

    private func count(_ source: String, _ result: String) {
        counters["\(source)|\(result)"]?.increment()
    }

    /// The leader of a key's miss: L2, else an evaluation on the chain; stores the answer.
    private func lead(chain: ChainContext, key: String, address: EthereumAddress, policy: AccessPolicy, policyID: String) async -> Result<OwnershipAnswer, OwnershipError> {
        // Before any answer is cached here: the follower must watch the policy's contracts.
        chain.register(policyID: policyID, contracts: policy.contracts)
        let redisKey = l2Key(chainID: policy.chainID, key: key)
        if let redis, let (verdict, remaining) = await l2Lookup(redis, key: redisKey, chain: chain) {
            chain.store(key, verdict: verdict, ttl: min(remaining, ttl(verdict)), maxEntries: configuration.maxL1Entries)
            count("l2", verdict.granted ? "granted" : "denied")
            return .success(OwnershipAnswer(granted: verdict.granted, reason: verdict.reason, source: .l2, block: verdict.block == 0 ? nil : verdict.block))
        }
        let result = await withCheckedContinuation { continuation in
            enqueue(chain: chain, Pending(address: address, policy: policy, continuation: continuation))
        }
        switch result {
        case .failure(let error):
            count("chain", "unavailable")
            return .failure(error)
        case .success(let verdict):
            count("chain", verdict.granted ? "granted" : "denied")
            if chain.store(key, verdict: verdict, ttl: ttl(verdict), maxEntries: configuration.maxL1Entries), let redis {
                await l2Store(redis, key: redisKey, chainID: policy.chainID, verdict: verdict)
            }
            return .success(OwnershipAnswer(granted: verdict.granted, reason: verdict.reason, source: .chain, block: verdict.block == 0 ? nil : verdict.block))
        }
    }

    func ttl(_ verdict: CachedVerdict) -> Duration {
        verdict.granted ? configuration.grantTTL : configuration.denialTTL
    }
}
