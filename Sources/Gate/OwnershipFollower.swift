import Logging
import NIOConcurrencyHelpers
import Ethereum

/// Makes an ``OwnershipService`` forget answers as soon as the chain changes them, instead of at
/// the end of their TTL: a sold token stops working within a block.
///
/// Every ``interval`` it reads the head block; for each new range of blocks it reads the logs of
/// every contract the service's policies use (ERC-721 `Transfer`, ERC-1155 `TransferSingle` and
/// `TransferBatch`, ERC-4907 `UpdateUser`, the delegate registry's `Delegate*`), and drops the
/// cached answers, in this process and in Redis, of every address those logs name (from, to,
/// operator, user, delegate, vault) and of every rented token they name. Only then does it
/// publish the new head, at which the service evaluates from then on: an answer is never read at
/// a block whose logs were not looked at yet.
///
/// Limits: a reorganisation is noticed only when the head number goes back (then everything
/// cached is dropped); a same-height reorganisation is not. A follower more than
/// ``maxCatchUp`` blocks behind drops everything rather than read every log.
public final class OwnershipFollower: Sendable {
    public let chainID: UInt64
    public let interval: Duration
    /// Most blocks per `eth_getLogs`.
    public let maxBlockRange: UInt64
    /// Most blocks read per poll before giving up on reading every log.
    public let maxCatchUp: UInt64
    private let service: OwnershipService
    private let context: ChainContext
    private let logger: Logger
    private let progress = NIOLockedValueBox<UInt64?>(nil)

    /// - Parameter interval: how often to ask for the head (1 s by default; a block on Ethereum is
    ///   12 s, on L2s 0.25–2 s).
    public init(service: OwnershipService, chainID: UInt64, interval: Duration = .seconds(1), maxBlockRange: UInt64 = 1000, maxCatchUp: UInt64 = 10_000, logger: Logger = Logger(label: "streamgate.gate.follower")) throws(OwnershipError) {
        guard let context = service.chain(chainID) else { throw .unsupportedChain(chainID) }
        self.service = service
        self.context = context
        self.chainID = chainID
        self.interval = interval
        self.maxBlockRange = max(1, maxBlockRange)
        self.maxCatchUp = max(self.maxBlockRange, maxCatchUp)
        self.logger = logger
    }

    /// The last block whose logs were processed.
    public var lastProcessedBlock: UInt64? { progress.withLockedValue { $0 } }

    /// Polls until the task is cancelled; errors are logged and the poll retried next interval.
    public func run() async {
        while !Task.isCancelled {
            do {
                try await poll()
            } catch {
                if Task.isCancelled { break }
                logger.warning("ownership follower poll failed", metadata: ["chain_id": .stringConvertible(chainID), "error": .string(error.description)])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// One step: reads the head, then the logs of the blocks since the last step. Returns how many
    /// logs were applied.
    @discardableResult
    public func poll() async throws(EthereumRPCError) -> Int {
        let rpc = context.rpc
        let block = try await rpc.send(RPCRequest("eth_getBlockByNumber", ["latest", false]))
        guard let head = block["number"]?.uint64, let timestamp = block["timestamp"]?.uint64 else {
            throw .badResponse("eth_getBlockByNumber(latest) without number or timestamp")
        }
        guard let last = progress.withLockedValue({ $0 }) else {
            // First poll: answers cached before now were read without a follower; start afresh.
            context.setStartingPoint(head)
            _ = publish(head: head, timestamp: timestamp, processed: head, generation: context.followedContracts().generation)
            return 0
        }
        if head < last {
            logger.warning("chain head went back; dropping every cached ownership answer", metadata: ["from": .stringConvertible(last), "to": .stringConvertible(head)])
            context.invalidateAll(before: head)
            _ = publish(head: head, timestamp: timestamp, processed: head, generation: context.followedContracts().generation)
            return 0
        }
        if head - last > maxCatchUp {
            logger.warning("ownership follower too far behind; dropping every cached answer", metadata: ["behind": .stringConvertible(head - last)])
            context.invalidateAll(before: head)
            _ = publish(head: head, timestamp: timestamp, processed: head, generation: context.followedContracts().generation)
            return 0
        }
        var applied = 0
        var (contracts, generation) = context.followedContracts()
        var readFor = Set<EthereumAddress>()
        while true {
            let newContracts = contracts.filter { !readFor.contains($0) }
            if !newContracts.isEmpty, head > last {
                var from = last + 1
                while from <= head {
                    let to = min(head, from + maxBlockRange - 1)
                    let logs = try await rpc.logs(LogFilter(fromBlock: .number(from), toBlock: .number(to), addresses: newContracts, topics: [ContractABI.ownershipTopics]))
                    applied += logs.count
                    await apply(logs)
                    from = to + 1
                }
            }
            readFor.formUnion(newContracts)
            if publish(head: head, timestamp: timestamp, processed: head, generation: generation) { return applied }
            // A policy with new contracts arrived meanwhile: read their logs for the same range.
            (contracts, generation) = context.followedContracts()
        }
    }

    private func publish(head: UInt64, timestamp: UInt64, processed: UInt64, generation: Int) -> Bool {
        let retention = max(service.configuration.grantTTL, service.configuration.denialTTL) + service.configuration.followerStaleness + .seconds(30)
        guard context.publish(head: head, timestamp: timestamp, generation: generation, retention: retention) else { return false }
        progress.withLockedValue { $0 = processed }
        return true
    }

    /// Drops the answers the logs concern.
    private func apply(_ logs: [EthereumLog]) async {
        var addresses: [EthereumAddress: UInt64] = [:]
        var tokens: [String: UInt64] = [:]
        for log in logs where !log.removed {
            guard let topic = log.topics.first else { continue }
            for word in log.topics.dropFirst() where word.count == 32 && word.prefix(12).allSatisfy({ $0 == 0 }) {
                let address = try! EthereumAddress(bytes: Array(word.suffix(20)))
                addresses[address] = max(addresses[address] ?? 0, log.blockNumber)
            }
            var token: [UInt8]?
            if topic == ContractABI.transferTopic, log.topics.count == 4 { token = log.topics[3] }
            if topic == ContractABI.updateUserTopic, log.topics.count >= 2 { token = log.topics[1] }
            if let token, let id = UInt256(bigEndian: token) {
                let key = "\(log.address.lowercasedHex):\(id)"
                tokens[key] = max(tokens[key] ?? 0, log.blockNumber)
            }
        }
        await service.invalidate(chainID: chainID, addresses: addresses, tokens: tokens)
    }
}

