import Vault
import Redis

/// Where sign-in nonces are issued and spent, so that a signed message is accepted at most once
/// across every replica of the origin.
public protocol NonceStore: Sendable {
    /// A new random nonce of at least 16 letters and digits, valid until the store's lifetime for
    /// it passes.
    func issue() async throws -> String

    /// Spends `nonce`, atomically: of any number of concurrent calls with the same nonce, on any
    /// replica, exactly one gets ``NonceConsumption/consumed``.
    func consume(_ nonce: String) async throws -> NonceConsumption
}

/// What spending a nonce found.
public enum NonceConsumption: Sendable, Equatable {
    /// The nonce was issued, unspent and unexpired; it is spent now.
    case consumed
    /// The nonce was never issued here, or its lifetime passed.
    case unknown
    /// The nonce was already spent (a stored record that cannot tell this from ``unknown`` says
    /// ``unknown``).
    case alreadyUsed
}

/// No nonce could be issued: as many as the store allows are outstanding. Nothing is wrong with
/// the request; ``retryAfter`` is when the oldest of them expires.
public struct NonceStoreFull: Error, CustomStringConvertible, Sendable {
    public let retryAfter: Duration
    public var description: String { "too many sign-in nonces are outstanding; retry in \(retryAfter)" }
}

/// Nonces in Redis, one key each under the deployment's hash tag: `{sg}:siwe:nonce:<nonce>`.
///
/// `issue` writes the key with `SET … NX PX <lifetime>`. `consume` turns it from `issued` to `used`
/// with one `SET … XX KEEPTTL GET`, whose reply is the value before: nil means unknown (never issued,
/// or expired), `issued` means this call spent it, `used` means a replay. One command, so the check
/// and the spend are atomic on the server whichever replica sends it; the `used` marker keeps the
/// nonce's remaining lifetime, so a replay is told apart from an unknown nonce for as long as the
/// message could otherwise have been accepted. Needs Redis 6.2 or later (`SET … GET`).
///
/// Anyone may ask for a nonce, so their number is bounded: `issue` runs one script that also keeps
/// `{sg}:siwe:nonces`, a sorted set of the nonces alive scored by expiry (server time), forgets the
/// expired, and refuses (``NonceStoreFull``) once ``maximumOutstanding`` are alive, spent ones
/// included, since their keys hold memory until they expire. Every key here has a TTL.
public struct RedisNonceStore: NonceStore {
    /// Letters and digits in a nonce: 22 of 62 symbols, about 131 bits.
    public static let nonceLength = 22

    private let client: RedisClient
    private let tag: String
    /// How long an issued nonce stays valid.
    public let lifetime: Duration
    /// How many nonces may be alive at once across the deployment.
    public let maximumOutstanding: Int

    /// - Parameters:
    ///   - prefix: the hash tag's content, `sg` by default, as for the job queue's keys.
    ///   - lifetime: how long a nonce may wait for its signed message; 5 minutes by default.
    ///   - maximumOutstanding: the bound on live nonces; 100,000 (about 20 MB of Redis) by default.
    public init(client: RedisClient, prefix: String = "sg", lifetime: Duration = .seconds(300), maximumOutstanding: Int = 100_000) {
        self.client = client
        self.tag = "{\(prefix)}"
        self.lifetime = lifetime
        self.maximumOutstanding = max(1, maximumOutstanding)
    }

    /// The key holding `nonce`.
    public func key(_ nonce: String) -> String { "\(tag):siwe:nonce:\(nonce)" }
    /// The sorted set of live nonces, by expiry (ms).
    public var index: String { "\(tag):siwe:nonces" }

    public func issue() async throws -> String {
        let milliseconds = max(1, lifetime.components.seconds * 1000 + lifetime.components.attoseconds / 1_000_000_000_000_000)
        while true {
            let nonce = try Self.randomNonce()
            let reply = try await client.eval(
                Self.issueScript, keys: [key(nonce), index],
                arguments: [Array(nonce.utf8), Array(String(milliseconds).utf8), Array(String(maximumOutstanding).utf8)]
            )
            guard let parts = reply.array, parts.count == 2, let outcome = parts[0].int, let wait = parts[1].int else {
                throw RedisError.unexpectedReply(command: "EVALSHA issue nonce", reply: "\(reply)")
            }
            if outcome == 1 { return nonce }
            if outcome == 0 { throw NonceStoreFull(retryAfter: .milliseconds(max(1, wait))) }
            // -1: 131 random bits repeated a live nonce; draw again rather than share it.
        }
    }

    /// KEYS: the nonce's key, the index. ARGV: nonce, lifetime ms, maximum outstanding.
    /// Returns {1, 0} issued, {0, ms until the oldest expires} full, {-1, 0} the key exists.
    static let issueScript = RedisScript("""
    local time = redis.call('TIME')
    local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    local ttl, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[2]) >= cap then
      local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
      return {0, tonumber(oldest[2]) - now}
    end
    if not redis.call('SET', KEYS[1], 'issued', 'NX', 'PX', ttl) then return {-1, 0} end
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
    redis.call('PEXPIRE', KEYS[2], ttl)
    return {1, 0}
    """)

    public func consume(_ nonce: String) async throws -> NonceConsumption {
        // Nonces are alphanumeric: anything else was not issued here and must not shape a key.
        guard !nonce.isEmpty, nonce.utf8.allSatisfy({ URIGrammar.isAlpha($0) || URIGrammar.isDigit($0) }) else { return .unknown }
        let command = ["SET", key(nonce), "used", "XX", "KEEPTTL", "GET"]
        switch try await client.send(command) {
        case .null: return .unknown
        case .string(let before) where before.elementsEqual("issued".utf8): return .consumed
        case .string(let before) where before.elementsEqual("used".utf8): return .alreadyUsed
        case let reply: throw RedisError.unexpectedReply(command: "SET … XX KEEPTTL GET", reply: "\(reply)")
        }
    }

    /// `nonceLength` letters and digits from the system's CSPRNG, by rejection sampling so every
    /// symbol is equally likely.
    static func randomNonce() throws -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(nonceLength)
        while out.count < nonceLength {
            for byte in try SecureRandom.bytes(nonceLength * 2) where byte < 248 && out.count < nonceLength {
                out.append(alphabet[Int(byte % 62)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
