import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import Redis
import Ethereum

/// Whether an account may watch under a policy, and why.
public struct OwnershipAnswer: Sendable, Hashable {
    /// Where the answer came from.
    public enum Source: String, Sendable, Hashable {
        /// This process's cache.
        case l1
        /// The cache in Redis shared by every replica.
        case l2
        /// The chain, just now.
        case chain
    }

    public var granted: Bool
    /// What held or which condition failed, for a person (the body of a 403).
    public var reason: String
    public var source: Source
    /// The block the answer was read at; nil when it was read at `latest` without learning the
    /// number (no follower, no Multicall3, a single round of reads).
    public var block: UInt64?

    public init(granted: Bool, reason: String, source: Source, block: UInt64?) {
        self.granted = granted
        self.reason = reason
        self.source = source
        self.block = block
    }
}

/// Why there is no answer. The caller fails closed: no access, HTTP 503.
public enum OwnershipError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The chain could not be asked (every endpoint failed, or answered nonsense).
    case unavailable(String)
    /// No endpoint is configured for the policy's chain.
    case unsupportedChain(UInt64)

    public var description: String {
        switch self {
        case .unavailable(let reason): "ownership unknown: \(reason)"
        case .unsupportedChain(let chainID): "no RPC endpoint is configured for chain \(chainID)"
        }
    }
}

/// How an ``OwnershipService`` caches and batches.
public struct OwnershipConfiguration: Sendable {
    /// How long a grant is reused (without a follower, also the longest a sold token keeps
    /// working).
    public var grantTTL: Duration
    /// How long a denial is reused (how long a buyer waits at most without a follower).
    public var denialTTL: Duration
    /// Most answers in this process's cache.
    public var maxL1Entries: Int
    /// Evaluations that miss the caches within this window go to the chain together: one JSON-RPC
    /// batch or one `aggregate3` for all of them.
    public var coalescingWindow: Duration
    /// Most evaluations in one round trip.
    public var maxEvaluationsPerRound: Int
    /// Most vaults looked at per `delegate` condition (the registry may list up to 256).
    public var maxVaultsPerDelegate: Int
    /// The hash tag of the Redis keys: `{sg}:gate:own:…`.
    public var redisPrefix: String
    /// A follower's head older than this is not trusted: evaluations read `latest` instead.
    public var followerStaleness: Duration

    public init(
        grantTTL: Duration = .seconds(60),
        denialTTL: Duration = .seconds(10),
        maxL1Entries: Int = 100_000,
        coalescingWindow: Duration = .milliseconds(2),
        maxEvaluationsPerRound: Int = 256,
        maxVaultsPerDelegate: Int = 16,
        redisPrefix: String = "sg",
        followerStaleness: Duration = .seconds(10)
    ) {
        self.grantTTL = grantTTL
        self.denialTTL = denialTTL
        self.maxL1Entries = max(1, maxL1Entries)
        self.coalescingWindow = coalescingWindow
        self.maxEvaluationsPerRound = max(1, maxEvaluationsPerRound)
        self.maxVaultsPerDelegate = max(1, maxVaultsPerDelegate)
        self.redisPrefix = redisPrefix
        self.followerStaleness = followerStaleness
    }
}

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
    private let chains: [UInt64: ChainContext]
    private let redis: RedisClient?
    private let logger: Logger
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

    private func ttl(_ verdict: CachedVerdict) -> Duration {
        verdict.granted ? configuration.grantTTL : configuration.denialTTL
    }

    // MARK: Coalescing

    struct Pending: Sendable {
        let address: EthereumAddress
        let policy: AccessPolicy
        let continuation: CheckedContinuation<Result<CachedVerdict, OwnershipError>, Never>
    }

    /// Most rounds with the chain at once (only full rounds go while another is out).
    static let maxRoundsInFlight = 4

    private func enqueue(chain: ChainContext, _ pending: Pending) {
        enum Start { case now, afterWindow, later }
        let start: Start = chain.state.withLockedValue { state in
            state.pending.append(pending)
            if state.pending.count >= configuration.maxEvaluationsPerRound, state.roundsInFlight < Self.maxRoundsInFlight { return .now }
            // A round in flight flushes what waits when it ends; a scheduled flush takes this too.
            guard state.roundsInFlight == 0, !state.flushScheduled else { return .later }
            state.flushScheduled = true
            return .afterWindow
        }
        switch start {
        case .now:
            Task { await self.flush(chain: chain) }
        case .afterWindow:
            let window = configuration.coalescingWindow
            Task {
                try? await Task.sleep(for: window)
                await self.flush(chain: chain)
            }
        case .later:
            break
        }
    }

    /// Evaluates what is pending on `chain` in one round of reads at one block; then, when nothing
    /// else is out, the misses that arrived meanwhile.
    private func flush(chain: ChainContext) async {
        let batch: [Pending] = chain.state.withLockedValue { state in
            state.flushScheduled = false
            let taken = Array(state.pending.prefix(configuration.maxEvaluationsPerRound))
            state.pending.removeFirst(taken.count)
            if !taken.isEmpty { state.roundsInFlight += 1 }
            return taken
        }
        guard !batch.isEmpty else { return }
        let result = await evaluate(batch.map { ($0.address, $0.policy) }, chain: chain)
        switch result {
        case .failure(let error):
            for pending in batch { pending.continuation.resume(returning: .failure(error)) }
        case .success(let verdicts):
            for (pending, verdict) in zip(batch, verdicts) { pending.continuation.resume(returning: .success(verdict)) }
        }
        let again = chain.state.withLockedValue { state -> Bool in
            state.roundsInFlight -= 1
            guard state.roundsInFlight == 0, !state.pending.isEmpty, !state.flushScheduled else { return false }
            state.flushScheduled = true
            return true
        }
        if again { Task { await self.flush(chain: chain) } }
    }

    /// Evaluates `items` together: their reads, deduplicated, in as few round trips as the policies
    /// allow (one for token conditions, two or three with delegations), all at one block.
    ///
    /// The block: the follower's head when one runs. Otherwise `latest`, and its number is learnt
    /// for free through Multicall3's `getBlockNumber()` inside the same `aggregate3`; without
    /// Multicall3 an `eth_blockNumber` (first in the batch, so never newer than the reads) is asked
    /// when a later round must read at the same block (delegations) or a follower has started,
    /// else the number stays unknown (0: older than anything a follower would later log, so such
    /// an answer is dropped when a follower starts).
    func evaluate(_ items: [(EthereumAddress, AccessPolicy)], chain: ChainContext) async -> Result<[CachedVerdict], OwnershipError> {
        var evaluations = items.map { PolicyEvaluation(viewer: $0.0, policy: $0.1, maxVaults: configuration.maxVaultsPerDelegate) }
        var block = chain.trustedHead(staleness: configuration.followerStaleness)
        let multicall = chain.rpc.configuration.multicall3
        // Delegations read in several rounds, at one block. And once a follower has started, an
        // answer of an unknown block would not be kept (a follower too slow to be trusted, on a
        // loaded host): ask the number then too, in the same batch.
        let needsPinnedBlock = items.contains { $0.1.condition.containsDelegate } || (block == nil && chain.hasFollower)
        let blockNumberRead = multicall.map { ContractRead(call: EthCall(to: $0, data: ContractABI.getBlockNumber)) }
        var results: [ContractRead: CallResult] = [:]
        var rounds = 0
        while true {
            var missing: [ContractRead] = []
            var requested = Set<ContractRead>()
            for index in evaluations.indices { evaluations[index].run(results: results, missing: &missing, requested: &requested) }
            if missing.isEmpty { break }
            rounds += 1
            if rounds > 4 {
                for index in evaluations.indices { evaluations[index].abandon() }
                break
            }
            let askNumber = block == nil && rounds == 1
            if askNumber, let blockNumberRead { missing.insert(blockNumberRead, at: 0) }
            do {
                let (answers, extra) = try await chain.rpc.read(
                    missing.map(\.call), block: block.map { .number($0) } ?? .latest,
                    extra: askNumber && multicall == nil && needsPinnedBlock ? [RPCRequest("eth_blockNumber")] : []
                )
                if askNumber {
                    if let blockNumberRead {
                        block = answers.first?.data.flatMap { try? ABI.decode(.uint, from: $0).uint?.uint64 }
                        guard block != nil else { return .failure(.unavailable("Multicall3 getBlockNumber() at \(blockNumberRead.call.to) failed")) }
                        missing.removeFirst()
                    } else if case .result(let value) = extra.first {
                        block = value.uint64
                    }
                }
                for (read, answer) in zip(missing, answers.suffix(missing.count)) { results[read] = answer }
            } catch {
                logger.warning("ownership evaluation failed", metadata: ["chain_id": .stringConvertible(chain.rpc.configuration.chainID), "error": .string(error.description)])
                return .failure(.unavailable(error.description))
            }
        }
        return .success(evaluations.map { evaluation in
            let outcome = evaluation.outcome ?? (false, "not evaluated")
            return CachedVerdict(
                granted: outcome.granted, reason: outcome.reason, block: block ?? 0,
                dependencies: evaluation.dependencies, tokens: evaluation.tokens.sorted(),
                rentalExpiry: outcome.granted ? evaluation.rentalExpiry : nil
            )
        })
    }

    // MARK: Invalidation (from the follower)

    /// Drops the cached answers of every address and token named in logs up to `block`, here and in
    /// Redis, and remembers the block so that no answer read before it is served again.
    func invalidate(chainID: UInt64, addresses: [EthereumAddress: UInt64], tokens: [String: UInt64]) async {
        guard let chain = chains[chainID], !(addresses.isEmpty && tokens.isEmpty) else { return }
        chain.invalidate(addresses: addresses, tokens: tokens)
        guard let redis else { return }
        let keys = addresses.keys.map { l2AddressIndex(chainID: chainID, $0) } + tokens.keys.map { l2TokenIndex(chainID: chainID, $0) }
        var start = 0
        while start < keys.count {
            let slice = Array(keys[start..<min(keys.count, start + 200)])
            do {
                _ = try await redis.eval(Self.invalidateScript, keys: slice, arguments: [])
            } catch {
                logger.warning("cannot drop cached ownership answers in Redis", metadata: ["error": .string(error.description)])
            }
            start += 200
        }
    }

    func chain(_ chainID: UInt64) -> ChainContext? { chains[chainID] }

    // MARK: L2

    private var tag: String { "{\(configuration.redisPrefix)}" }
    func l2Key(chainID: UInt64, key: String) -> String { "\(tag):gate:own:\(chainID):\(key)" }
    private func l2AddressIndex(chainID: UInt64, _ address: EthereumAddress) -> String { "\(tag):gate:own:idx:\(chainID):\(address.lowercasedHex)" }
    private func l2TokenIndex(chainID: UInt64, _ token: String) -> String { "\(tag):gate:own:tidx:\(chainID):\(token)" }

    /// SET the answer with its TTL and add its key to the index sets of its addresses and tokens
    /// (kept at least as long as the answer).
    private static let storeScript = RedisScript("""
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        local ttl = tonumber(ARGV[2])
        for i = 2, #KEYS do
          redis.call('SADD', KEYS[i], KEYS[1])
          if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
        end
        return 1
        """)

    /// Deletes every answer listed in the given index sets, and the sets.
    private static let invalidateScript = RedisScript("""
        local dropped = 0
        for i = 1, #KEYS do
          local members = redis.call('SMEMBERS', KEYS[i])
          for _, member in ipairs(members) do dropped = dropped + redis.call('DEL', member) end
          redis.call('DEL', KEYS[i])
        end
        return dropped
        """)

    /// The answer in Redis and how long it has left there (an L1 copy lives no longer).
    private func l2Lookup(_ redis: RedisClient, key: String, chain: ChainContext) async -> (CachedVerdict, Duration)? {
        do {
            let replies = try await redis.pipeline([["GET", key], ["PTTL", key]])
            guard replies.count == 2, case .string(let bytes) = replies[0], let milliseconds = replies[1].int, milliseconds > 0 else { return nil }
            guard let verdict = CachedVerdict(json: bytes) else { return nil }
            return chain.isCurrent(verdict, wall: Date()) ? (verdict, .milliseconds(milliseconds)) : nil
        } catch {
            logger.warning("ownership L2 read failed", metadata: ["error": .string(error.description)])
            return nil
        }
    }

    private func l2Store(_ redis: RedisClient, key: String, chainID: UInt64, verdict: CachedVerdict) async {
        let ttl = ttl(verdict).components
        let milliseconds = max(1, ttl.seconds * 1000 + ttl.attoseconds / 1_000_000_000_000_000)
        let keys = [key] + verdict.dependencies.map { l2AddressIndex(chainID: chainID, $0) } + verdict.tokens.map { l2TokenIndex(chainID: chainID, $0) }
        do {
            _ = try await redis.eval(Self.storeScript, keys: keys, arguments: [verdict.json, Array(String(milliseconds).utf8)])
        } catch {
            logger.warning("ownership L2 write failed", metadata: ["error": .string(error.description)])
        }
    }
}

/// A cached answer and what it depends on.
struct CachedVerdict: Sendable, Hashable {
    var granted: Bool
    var reason: String
    var block: UInt64
    var dependencies: [EthereumAddress]
    var tokens: [String]
    var rentalExpiry: UInt64?

    var json: [UInt8] {
        var object: [String: JSONValue] = [
            "g": .bool(granted), "r": .string(reason), "b": .integer(block),
            "d": .array(dependencies.map { .string($0.lowercasedHex) }), "t": .array(tokens.map { .string($0) }),
        ]
        if let rentalExpiry { object["x"] = .integer(rentalExpiry) }
        return (try? Array(JSONEncoder().encode(JSONValue.object(object)))) ?? []
    }

    init(granted: Bool, reason: String, block: UInt64, dependencies: [EthereumAddress], tokens: [String], rentalExpiry: UInt64?) {
        self.granted = granted
        self.reason = reason
        self.block = block
        self.dependencies = dependencies
        self.tokens = tokens
        self.rentalExpiry = rentalExpiry
    }

    init?(json: [UInt8]) {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(json)),
            let granted = value["g"]?.bool, let reason = value["r"]?.string, let block = value["b"]?.uint64,
            let dependencies = value["d"]?.array?.compactMap({ $0.string.flatMap { try? EthereumAddress(hex: $0) } }),
            let tokens = value["t"]?.array?.compactMap(\.string)
        else { return nil }
        self.init(granted: granted, reason: reason, block: block, dependencies: dependencies, tokens: tokens, rentalExpiry: value["x"]?.uint64)
    }
}

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
