import Foundation
import Logging
import Redis
import Ethereum

extension OwnershipService {
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
    func l2Lookup(_ redis: RedisClient, key: String, chain: ChainContext) async -> (CachedVerdict, Duration)? {
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

    func l2Store(_ redis: RedisClient, key: String, chainID: UInt64, verdict: CachedVerdict) async {
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
