import Logging
import Ethereum

extension OwnershipService {
    // MARK: Coalescing

    struct Pending: Sendable {
        let address: EthereumAddress
        let policy: AccessPolicy
        let continuation: CheckedContinuation<Result<CachedVerdict, OwnershipError>, Never>
    }

    /// Most rounds with the chain at once (only full rounds go while another is out).
    static let maxRoundsInFlight = 4

    func enqueue(chain: ChainContext, _ pending: Pending) {
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
}
