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
