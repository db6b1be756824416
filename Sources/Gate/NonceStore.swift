import Jobs
import Vault

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

/// Nonces in Redis, one key each under the deployment's hash tag: `{sg}:siwe:nonce:<nonce>`.
///
/// `issue` writes the key with `SET … NX PX <lifetime>`. `consume` turns it from `issued` to `used`
/// with one `SET … XX KEEPTTL GET`, whose reply is the value before: nil means unknown (never issued,
/// or expired), `issued` means this call spent it, `used` means a replay. One command, so the check
/// and the spend are atomic on the server whichever replica sends it; the `used` marker keeps the
/// nonce's remaining lifetime, so a replay is told apart from an unknown nonce for as long as the
/// message could otherwise have been accepted. Needs Redis 6.2 or later (`SET … GET`).
public struct RedisNonceStore: NonceStore {
    /// Letters and digits in a nonce: 22 of 62 symbols, about 131 bits.
    public static let nonceLength = 22

    private let client: RedisClient
    private let tag: String
    /// How long an issued nonce stays valid.
    public let lifetime: Duration

    /// - Parameters:
    ///   - prefix: the hash tag's content, `sg` by default, as for the job queue's keys.
    ///   - lifetime: how long a nonce may wait for its signed message; 5 minutes by default.
    public init(client: RedisClient, prefix: String = "sg", lifetime: Duration = .seconds(300)) {
        self.client = client
        self.tag = "{\(prefix)}"
        self.lifetime = lifetime
    }

    /// The key holding `nonce`.
    public func key(_ nonce: String) -> String { "\(tag):siwe:nonce:\(nonce)" }

    public func issue() async throws -> String {
        let milliseconds = max(1, lifetime.components.seconds * 1000 + lifetime.components.attoseconds / 1_000_000_000_000_000)
        while true {
            let nonce = try Self.randomNonce()
            let reply = try await client.send(["SET", key(nonce), "issued", "NX", "PX", String(milliseconds)])
            // NX fails only if 131 random bits repeat a live nonce: draw again rather than share it.
            if reply == .status("OK") { return nonce }
        }
    }

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
