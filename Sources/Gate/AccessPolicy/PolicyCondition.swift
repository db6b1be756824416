import Ethereum

/// One condition of an ``AccessPolicy``.
public indirect enum PolicyCondition: Codable, Sendable, Hashable {
    /// Every condition holds.
    case all([PolicyCondition])
    /// At least one condition holds (evaluated in order; the first that holds decides).
    case any([PolicyCondition])
    /// Holds ERC-721 tokens of a contract.
    case erc721(ERC721Condition)
    /// Holds an ERC-1155 token.
    case erc1155(ERC1155Condition)
    /// Is the current ERC-4907 user (renter) of a token, or its owner.
    case erc4907(ERC4907Condition)
    /// A vault that delegated to the viewer through the delegate.xyz v2 registry meets the inner
    /// condition.
    case delegate(DelegateCondition)

    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        var budget = PolicyReader.Budget()
        let path = PolicyReader.path(decoder.codingPath)
        self = try PolicyReader.condition(value, path: path, depth: 1, insideDelegate: false, budget: &budget)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        switch self {
        case .all(let conditions): try container.encode(conditions, forKey: AnyCodingKey("all"))
        case .any(let conditions): try container.encode(conditions, forKey: AnyCodingKey("any"))
        case .erc721(let condition): try container.encode(condition, forKey: AnyCodingKey("erc721"))
        case .erc1155(let condition): try container.encode(condition, forKey: AnyCodingKey("erc1155"))
        case .erc4907(let condition): try container.encode(condition, forKey: AnyCodingKey("erc4907"))
        case .delegate(let condition): try container.encode(condition, forKey: AnyCodingKey("delegate"))
        }
    }

    /// The condition in the canonical text ``AccessPolicy/canonicalJSON`` is made of.
    public var canonicalJSON: String {
        switch self {
        case .all(let conditions): "{\"all\":[" + conditions.map(\.canonicalJSON).joined(separator: ",") + "]}"
        case .any(let conditions): "{\"any\":[" + conditions.map(\.canonicalJSON).joined(separator: ",") + "]}"
        case .erc721(let condition):
            "{\"erc721\":{\"contract\":\"\(condition.contract.lowercasedHex)\",\"min_balance\":\(condition.minBalance)"
                + (condition.tokenIDs.map { ",\"token_ids\":[" + $0.sorted().map { "\"\($0)\"" }.joined(separator: ",") + "]" } ?? "")
                + "}}"
        case .erc1155(let condition):
            "{\"erc1155\":{\"contract\":\"\(condition.contract.lowercasedHex)\",\"min_balance\":\(condition.minBalance),\"token_id\":\"\(condition.tokenID)\"}}"
        case .erc4907(let condition):
            "{\"erc4907\":{\"contract\":\"\(condition.contract.lowercasedHex)\",\"renter_only\":\(condition.renterOnly),\"token_id\":\"\(condition.tokenID)\"}}"
        case .delegate(let condition):
            "{\"delegate\":{\"condition\":\(condition.condition.canonicalJSON),\"registry\":\"\(condition.registry.lowercasedHex)\"}}"
        }
    }

    /// Whether a `delegate` condition appears anywhere (its evaluation takes more than one round
    /// of reads).
    public var containsDelegate: Bool {
        switch self {
        case .all(let conditions), .any(let conditions): conditions.contains { $0.containsDelegate }
        case .delegate: true
        case .erc721, .erc1155, .erc4907: false
        }
    }

    func forEachContract(_ body: (EthereumAddress) -> Void) {
        switch self {
        case .all(let conditions), .any(let conditions): conditions.forEach { $0.forEachContract(body) }
        case .erc721(let condition): body(condition.contract)
        case .erc1155(let condition): body(condition.contract)
        case .erc4907(let condition): body(condition.contract)
        case .delegate(let condition):
            body(condition.registry)
            condition.condition.forEachContract(body)
        }
    }
}
