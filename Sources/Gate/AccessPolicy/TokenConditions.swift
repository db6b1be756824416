import Ethereum

/// Owns ERC-721 tokens of `contract`.
///
/// With ``tokenIDs``, the viewer must own (`ownerOf`) at least ``minBalance`` of the listed ids; a
/// token that does not exist counts as not owned. Without, `balanceOf(viewer) ≥ minBalance`.
public struct ERC721Condition: Codable, Sendable, Hashable {
    public var contract: EthereumAddress
    /// Exact ids and inclusive ranges, or nil for any token of the contract.
    public var tokenIDs: [TokenIDRange]?
    /// How many tokens (of the listed ids, when there are ids) the viewer must own; at least 1.
    public var minBalance: UInt64

    public init(contract: EthereumAddress, tokenIDs: [TokenIDRange]? = nil, minBalance: UInt64 = 1) {
        self.contract = contract
        self.tokenIDs = tokenIDs
        self.minBalance = minBalance
    }

    /// Every listed id, ranges expanded, in the order given.
    public var expandedTokenIDs: [UInt256] { tokenIDs?.flatMap(\.ids) ?? [] }

    public init(from decoder: any Decoder) throws {
        var budget = PolicyReader.Budget()
        self = try PolicyReader.erc721(JSONValue(from: decoder), path: PolicyReader.path(decoder.codingPath), budget: &budget)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        try container.encode(contract, forKey: AnyCodingKey("contract"))
        if let tokenIDs { try container.encode(tokenIDs.map(\.description), forKey: AnyCodingKey("token_ids")) }
        try container.encode(minBalance, forKey: AnyCodingKey("min_balance"))
    }
}

/// Holds at least ``minBalance`` of ERC-1155 token ``tokenID`` of `contract` (`balanceOf`).
public struct ERC1155Condition: Codable, Sendable, Hashable {
    public var contract: EthereumAddress
    public var tokenID: UInt256
    /// At least 1.
    public var minBalance: UInt64

    public init(contract: EthereumAddress, tokenID: UInt256, minBalance: UInt64 = 1) {
        self.contract = contract
        self.tokenID = tokenID
        self.minBalance = minBalance
    }

    public init(from decoder: any Decoder) throws {
        self = try PolicyReader.erc1155(JSONValue(from: decoder), path: PolicyReader.path(decoder.codingPath))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        try container.encode(contract, forKey: AnyCodingKey("contract"))
        try container.encode(tokenID.description, forKey: AnyCodingKey("token_id"))
        try container.encode(minBalance, forKey: AnyCodingKey("min_balance"))
    }
}

/// Is the current ERC-4907 user of token ``tokenID`` of `contract` (`userOf`, which answers the
/// zero address once the rental expired), or, unless ``renterOnly``, its owner (`ownerOf`).
///
/// The owner is admitted by default because a rental lends the right to watch, and an owner whose
/// token is not rented out obviously has it; an owner who rented the token out keeps it too, as
/// an ERC-721 condition on the same token would admit them. `renter_only: true` is for policies
/// that mean "whoever currently holds the rental".
public struct ERC4907Condition: Codable, Sendable, Hashable {
    public var contract: EthereumAddress
    public var tokenID: UInt256
    /// Admit only the current user, not the owner.
    public var renterOnly: Bool

    public init(contract: EthereumAddress, tokenID: UInt256, renterOnly: Bool = false) {
        self.contract = contract
        self.tokenID = tokenID
        self.renterOnly = renterOnly
    }

    public init(from decoder: any Decoder) throws {
        self = try PolicyReader.erc4907(JSONValue(from: decoder), path: PolicyReader.path(decoder.codingPath))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        try container.encode(contract, forKey: AnyCodingKey("contract"))
        try container.encode(tokenID.description, forKey: AnyCodingKey("token_id"))
        try container.encode(renterOnly, forKey: AnyCodingKey("renter_only"))
    }
}

/// The viewer is admitted when a vault that delegated to them in the delegate.xyz v2 registry meets
/// ``condition``, each token condition checked together with a delegation that covers it:
/// `checkDelegateForAll`, `…ForContract` (for `erc721` without ids and `erc1155`… by contract),
/// `…ForERC721` (for each token id counted), `…ForERC1155` (its amount caps the balance counted).
/// Only delegations with empty rights (all rights) count.
public struct DelegateCondition: Codable, Sendable, Hashable {
    /// delegate.xyz v2's address on every chain it is deployed to.
    public static let canonicalRegistry = try! EthereumAddress(hex: "0x00000000000000447e69651d841bD8D104Bed493")

    /// The registry to ask (``canonicalRegistry`` unless the JSON names `registry`).
    public var registry: EthereumAddress
    /// What the vault must meet; contains no `delegate`.
    public var condition: PolicyCondition

    public init(condition: PolicyCondition, registry: EthereumAddress = DelegateCondition.canonicalRegistry) {
        self.condition = condition
        self.registry = registry
    }

    public init(from decoder: any Decoder) throws {
        var budget = PolicyReader.Budget()
        self = try PolicyReader.delegate(JSONValue(from: decoder), path: PolicyReader.path(decoder.codingPath), depth: 1, budget: &budget)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        try container.encode(condition, forKey: AnyCodingKey("condition"))
        if registry != Self.canonicalRegistry { try container.encode(registry, forKey: AnyCodingKey("registry")) }
    }
}
