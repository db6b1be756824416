import Foundation
import Logging
import NIOCore
import Redis

/// L2: objects in Redis, shared by every origin replica, so a replica with a cold L1 (just started,
/// or scaled out) reads from memory instead of the store.
///
/// Bounded three ways: objects larger than ``Options/maxObjectBytes`` are never stored, each
/// object expires after ``Options/ttlSeconds``, and the total stays within ``Options/budgetBytes``:
/// the script that stores an object first forgets expired ones, then evicts the oldest until the
/// new one fits. Only immutable objects go to L2 (files of a published version, named by
/// version), so nothing in it is ever stale; a withdrawn version is never asked for again, and
/// leaves by age or by eviction.
///
/// L2 is an optimisation: when Redis fails, lookups miss and stores are skipped, and the origin
/// serves from the store.
public final class SharedCache: Sendable {
    public struct Options: Sendable {
        public var budgetBytes: Int
        public var maxObjectBytes: Int
        public var ttlSeconds: Int

        public init(budgetBytes: Int = 1 << 30, maxObjectBytes: Int = 8 << 20, ttlSeconds: Int = 3600) {
            self.budgetBytes = budgetBytes
            self.maxObjectBytes = maxObjectBytes
            self.ttlSeconds = ttlSeconds
        }
    }

    let redis: RedisClient
    let keys: Keyspace
    public let options: Options
    let logger: Logger

    public init(redis: RedisClient, keys: Keyspace, options: Options, logger: Logger) {
        self.redis = redis
        self.keys = keys
        self.options = options
        self.logger = logger
    }

    /// The object called `name`, or nil (not there, or Redis failed).
    func get(_ name: String) async -> ObjectBytes? {
        do {
            let reply = try await redis.send(bytes: [Array("GET".utf8), Array(keys.cacheObject(name).utf8)])
            guard case .string(let bytes) = reply else { return nil }
            return PageMappedMemory.copy(bytes)
        } catch {
            logger.warning("L2 read failed; serving from the store", metadata: ["object": "\(name)", "error": "\(error)"])
            return nil
        }
    }

    /// Stores an object unless it is too large; true when stored.
    @discardableResult
    func put(_ name: String, _ body: ByteBuffer) async -> Bool {
        guard body.readableBytes <= options.maxObjectBytes, body.readableBytes <= options.budgetBytes else { return false }
        let now = Int(Date().timeIntervalSince1970 * 1000)
        do {
            let reply = try await redis.eval(
                Self.store, keys: [keys.cacheObject(name), keys.cacheIndex, keys.cacheSizes, keys.cacheBytes],
                arguments: [
                    Array(body.readableBytesView), Array(String(options.ttlSeconds * 1000).utf8),
                    Array(String(options.budgetBytes).utf8), Array(String(now).utf8),
                ]
            )
            return reply.int == 1
        } catch {
            logger.warning("L2 write failed", metadata: ["object": "\(name)", "error": "\(error)"])
            return false
        }
    }

    /// The bytes L2 holds by its own count.
    public func storedBytes() async throws -> Int {
        Int(try await redis.send(["GET", keys.cacheBytes]).int ?? 0)
    }

    /// KEYS: object, index (object key → expiry ms), sizes (object key → bytes), total bytes.
    /// ARGV: value, ttl ms, budget bytes, now ms. Returns 1 when stored, 0 when it cannot fit.
    static let store = RedisScript("""
    local index, sizes, total = KEYS[2], KEYS[3], KEYS[4]
    local size = string.len(ARGV[1])
    local ttl, budget, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
    local function drop(member)
      local bytes = tonumber(redis.call('HGET', sizes, member) or '0')
      redis.call('HDEL', sizes, member)
      redis.call('ZREM', index, member)
      redis.call('DEL', member)
      redis.call('DECRBY', total, bytes)
    end
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, 256)) do drop(member) end
    if redis.call('ZSCORE', index, KEYS[1]) then drop(KEYS[1]) end
    if size > budget then return 0 end
    while tonumber(redis.call('GET', total) or '0') + size > budget do
      local oldest = redis.call('ZRANGE', index, 0, 0)
      if #oldest == 0 then redis.call('SET', total, 0) break end
      drop(oldest[1])
    end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
    redis.call('ZADD', index, now + ttl, KEYS[1])
    redis.call('HSET', sizes, KEYS[1], size)
    redis.call('INCRBY', total, size)
    return 1
    """)
}
