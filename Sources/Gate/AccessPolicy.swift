import Foundation
import Ethereum

/// Who may watch a gated asset: a condition on what an account holds on one chain.
///
/// In JSON (snake_case, read strictly: unknown fields, wrong types, bad checksums, empty lists and
/// limits broken are errors naming the path, e.g. `condition.any[1].erc721.contract: bad checksum …`):
///
/// ```json
/// {"chain_id": 31337,
///  "condition": {"any": [
///    {"erc721": {"contract": "0x…", "token_ids": ["1", "5-9"], "min_balance": 1}},
///    {"erc1155": {"contract": "0x…", "token_id": "7", "min_balance": 2}},
///    {"erc4907": {"contract": "0x…", "token_id": "3", "renter_only": false}},
///    {"delegate": {"condition": {"erc721": {"contract": "0x…"}}}}]}}
/// ```
///
/// A condition is an object with exactly one key: `all` / `any` (a non-empty list of conditions),
/// `erc721`, `erc1155`, `erc4907` or `delegate`. See ``PolicyCondition`` for what each one means.
///
/// Limits keep the number of chain reads one evaluation can cause small and known in advance:
/// nesting at most ``maxDepth`` levels, at most ``maxLeaves`` token conditions, at most
/// ``maxTokenIDs`` token ids in all (ranges included), no `delegate` inside a `delegate`.
public struct AccessPolicy: Codable, Sendable, Hashable {
    /// The EIP-155 chain the contracts live on.
    public var chainID: UInt64
    /// What the viewer must hold.
    public var condition: PolicyCondition

    /// Deepest nesting of conditions (the top condition is level 1).
    public static let maxDepth = 4
    /// Most token conditions (`erc721`, `erc1155`, `erc4907`) in one policy.
    public static let maxLeaves = 16
    /// Most token ids listed in one policy, ranges counted by their size.
    public static let maxTokenIDs = 1000

    /// A policy as given; ``validate()`` says whether it keeps to the limits (decoding always does).
    public init(chainID: UInt64, condition: PolicyCondition) {
        self.chainID = chainID
        self.condition = condition
    }

    /// Reads a policy from JSON text, strictly.
    public init(json: some Collection<UInt8>) throws(AccessPolicyError) {
        let value: JSONValue
        do {
            value = try JSONDecoderShim.decode(Array(json))
        } catch {
            throw AccessPolicyError(path: "", reason: "not JSON: \(error)")
        }
        self = try PolicyReader.policy(value, path: "")
    }

    /// Reads a policy from JSON text, strictly.
    public init(json: String) throws(AccessPolicyError) {
        try self.init(json: Array(json.utf8))
    }

    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        self = try PolicyReader.policy(value, path: PolicyReader.path(decoder.codingPath))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        try container.encode(chainID, forKey: AnyCodingKey("chain_id"))
        try container.encode(condition, forKey: AnyCodingKey("condition"))
    }

    /// Checks the limits a decoded policy keeps to (for policies built in code).
    public func validate() throws(AccessPolicyError) {
        var budget = PolicyReader.Budget()
        try PolicyReader.check(condition, path: "condition", depth: 1, insideDelegate: false, budget: &budget)
    }

    /// The policy in one canonical text: compact JSON, keys in a fixed order, addresses in
    /// lowercase, token ids sorted, every default spelled out. Equal policies have equal text
    /// however they were written.
    public var canonicalJSON: String {
        "{\"chain_id\":\(chainID),\"condition\":\(condition.canonicalJSON)}"
    }

    /// A stable id for cache keys: the Keccak-256 of ``canonicalJSON``, 64 lowercase hex digits.
    public var policyID: String {
        String(EthereumHex.encode(Keccak256.hash(Array(canonicalJSON.utf8))).dropFirst(2))
    }

    /// Every contract an evaluation reads (token contracts and delegate registries), once each, in
    /// order of first appearance: the addresses to follow logs of.
    public var contracts: [EthereumAddress] {
        var seen = Set<EthereumAddress>()
        var out: [EthereumAddress] = []
        condition.forEachContract { address in
            if seen.insert(address).inserted { out.append(address) }
        }
        return out
    }
}

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

/// One token id (`"5"`) or an inclusive range of them (`"5-9"`), in decimal.
public struct TokenIDRange: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let lower: UInt256
    public let upper: UInt256

    /// A range `lower...upper`; nil when `lower > upper`.
    public init?(_ lower: UInt256, _ upper: UInt256) {
        guard lower <= upper else { return nil }
        self.lower = lower
        self.upper = upper
    }

    public init(_ id: UInt256) {
        lower = id
        upper = id
    }

    /// `"5"` or `"5-9"`; nil for anything else.
    public init?(text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            guard let id = UInt256(decimal: parts[0]) else { return nil }
            self.init(id)
        case 2:
            guard let lower = UInt256(decimal: parts[0]), let upper = UInt256(decimal: parts[1]) else { return nil }
            self.init(lower, upper)
        default:
            return nil
        }
    }

    /// How many ids it covers, when that fits 64 bits.
    public var count: UInt64? { upper.subtracting(lower)?.uint64.flatMap { $0 == .max ? nil : $0 + 1 } }

    /// The ids, in order (ranges are bounded by ``AccessPolicy/maxTokenIDs`` when decoded).
    public var ids: [UInt256] {
        var out = [lower]
        var current = lower
        while current < upper, let next = current.incremented() {
            out.append(next)
            current = next
        }
        return out
    }

    public func contains(_ id: UInt256) -> Bool { lower <= id && id <= upper }

    public var description: String { lower == upper ? lower.description : "\(lower)-\(upper)" }

    public static func < (lhs: TokenIDRange, rhs: TokenIDRange) -> Bool {
        lhs.lower != rhs.lower ? lhs.lower < rhs.lower : lhs.upper < rhs.upper
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let range = TokenIDRange(text: text) else {
            throw AccessPolicyError(path: PolicyReader.path(decoder.codingPath), reason: "'\(text)' is not a token id or range (decimal \"5\" or \"5-9\")")
        }
        self = range
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A policy document that is not valid: where (`condition.any[1].erc721.contract`) and why.
public struct AccessPolicyError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The JSON path of the offending value; empty for the document itself.
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}

/// The strict reader behind every `init(from:)` of the policy types.
enum PolicyReader {
    struct Budget {
        var leaves = 0
        var tokenIDs = 0
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += out.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return out
    }

    static func join(_ path: String, _ field: String) -> String { path.isEmpty ? field : "\(path).\(field)" }

    static func object(_ value: JSONValue, path: String, required: [String], optional: [String] = []) throws(AccessPolicyError) -> [String: JSONValue] {
        guard case .object(let fields) = value else {
            throw AccessPolicyError(path: path, reason: "expected an object, found \(value.kind)")
        }
        let known = Set(required + optional)
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw AccessPolicyError(path: join(path, unknown), reason: "unknown field (expected \((required + optional).joined(separator: ", ")))")
        }
        for name in required where fields[name] == nil {
            throw AccessPolicyError(path: join(path, name), reason: "missing")
        }
        return fields
    }

    static func policy(_ value: JSONValue, path: String) throws(AccessPolicyError) -> AccessPolicy {
        let fields = try object(value, path: path, required: ["chain_id", "condition"])
        let chainPath = join(path, "chain_id")
        guard case .integer(let chainID) = fields["chain_id"]!, chainID > 0 else {
            throw AccessPolicyError(path: chainPath, reason: "expected a positive whole number, found \(describe(fields["chain_id"]!))")
        }
        var budget = Budget()
        let condition = try condition(fields["condition"]!, path: join(path, "condition"), depth: 1, insideDelegate: false, budget: &budget)
        return AccessPolicy(chainID: chainID, condition: condition)
    }

    static func condition(_ value: JSONValue, path: String, depth: Int, insideDelegate: Bool, budget: inout Budget) throws(AccessPolicyError) -> PolicyCondition {
        guard case .object(let fields) = value else {
            throw AccessPolicyError(path: path, reason: "expected a condition object (all, any, erc721, erc1155, erc4907 or delegate), found \(value.kind)")
        }
        guard fields.count == 1, let (kind, inner) = fields.first else {
            let keys = fields.keys.sorted().joined(separator: ", ")
            throw AccessPolicyError(path: path, reason: fields.isEmpty ? "empty condition: expected one of all, any, erc721, erc1155, erc4907, delegate" : "a condition has exactly one key, found \(keys)")
        }
        guard depth <= AccessPolicy.maxDepth else {
            throw AccessPolicyError(path: path, reason: "nested deeper than \(AccessPolicy.maxDepth) levels")
        }
        let innerPath = join(path, kind)
        switch kind {
        case "all", "any":
            guard case .array(let items) = inner else {
                throw AccessPolicyError(path: innerPath, reason: "expected a list of conditions, found \(inner.kind)")
            }
            guard !items.isEmpty else { throw AccessPolicyError(path: innerPath, reason: "empty list: name at least one condition") }
            var conditions: [PolicyCondition] = []
            for (index, item) in items.enumerated() {
                conditions.append(try condition(item, path: "\(innerPath)[\(index)]", depth: depth + 1, insideDelegate: insideDelegate, budget: &budget))
            }
            return kind == "all" ? .all(conditions) : .any(conditions)
        case "erc721":
            try countLeaf(path: innerPath, budget: &budget)
            return .erc721(try erc721(inner, path: innerPath, budget: &budget))
        case "erc1155":
            try countLeaf(path: innerPath, budget: &budget)
            return .erc1155(try erc1155(inner, path: innerPath))
        case "erc4907":
            try countLeaf(path: innerPath, budget: &budget)
            return .erc4907(try erc4907(inner, path: innerPath))
        case "delegate":
            guard !insideDelegate else { throw AccessPolicyError(path: innerPath, reason: "a delegate condition cannot contain another") }
            return .delegate(try delegate(inner, path: innerPath, depth: depth, budget: &budget))
        default:
            throw AccessPolicyError(path: innerPath, reason: "unknown condition (expected all, any, erc721, erc1155, erc4907 or delegate)")
        }
    }

    static func countLeaf(path: String, budget: inout Budget) throws(AccessPolicyError) {
        budget.leaves += 1
        guard budget.leaves <= AccessPolicy.maxLeaves else {
            throw AccessPolicyError(path: path, reason: "more than \(AccessPolicy.maxLeaves) token conditions in one policy")
        }
    }

    static func erc721(_ value: JSONValue, path: String, budget: inout Budget) throws(AccessPolicyError) -> ERC721Condition {
        let fields = try object(value, path: path, required: ["contract"], optional: ["token_ids", "min_balance"])
        let contract = try address(fields["contract"]!, path: join(path, "contract"))
        let minBalance = try fields["min_balance"].map { v throws(AccessPolicyError) in try positive(v, path: join(path, "min_balance")) } ?? 1
        var tokenIDs: [TokenIDRange]?
        if let list = fields["token_ids"] {
            let listPath = join(path, "token_ids")
            guard case .array(let items) = list else { throw AccessPolicyError(path: listPath, reason: "expected a list of token ids, found \(list.kind)") }
            guard !items.isEmpty else { throw AccessPolicyError(path: listPath, reason: "empty list: leave token_ids out for any token of the contract") }
            var ranges: [TokenIDRange] = []
            var total: UInt64 = 0
            for (index, item) in items.enumerated() {
                let itemPath = "\(listPath)[\(index)]"
                guard case .string(let text) = item else {
                    throw AccessPolicyError(path: itemPath, reason: "expected a decimal string (\"5\" or \"5-9\"), found \(item.kind)")
                }
                guard let range = TokenIDRange(text: text) else {
                    throw AccessPolicyError(path: itemPath, reason: "'\(EthereumHex.abbreviated(text))' is not a token id or an ascending range (decimal uint256, \"5\" or \"5-9\")")
                }
                guard let count = range.count, count <= UInt64(AccessPolicy.maxTokenIDs) else {
                    throw AccessPolicyError(path: itemPath, reason: "range covers more than \(AccessPolicy.maxTokenIDs) ids")
                }
                if let overlap = ranges.first(where: { $0.lower <= range.upper && range.lower <= $0.upper }) {
                    throw AccessPolicyError(path: itemPath, reason: "overlaps \"\(overlap)\" listed before")
                }
                budget.tokenIDs += Int(count)
                guard budget.tokenIDs <= AccessPolicy.maxTokenIDs else {
                    throw AccessPolicyError(path: itemPath, reason: "more than \(AccessPolicy.maxTokenIDs) token ids in one policy")
                }
                total += count
                ranges.append(range)
            }
            guard minBalance <= total else {
                throw AccessPolicyError(path: join(path, "min_balance"), reason: "\(minBalance) is more than the \(total) token ids listed")
            }
            tokenIDs = ranges
        }
        return ERC721Condition(contract: contract, tokenIDs: tokenIDs, minBalance: minBalance)
    }

    static func erc1155(_ value: JSONValue, path: String) throws(AccessPolicyError) -> ERC1155Condition {
        let fields = try object(value, path: path, required: ["contract", "token_id"], optional: ["min_balance"])
        let contract = try address(fields["contract"]!, path: join(path, "contract"))
        let tokenID = try uint256(fields["token_id"]!, path: join(path, "token_id"))
        let minBalance = try fields["min_balance"].map { v throws(AccessPolicyError) in try positive(v, path: join(path, "min_balance")) } ?? 1
        return ERC1155Condition(contract: contract, tokenID: tokenID, minBalance: minBalance)
    }

    static func erc4907(_ value: JSONValue, path: String) throws(AccessPolicyError) -> ERC4907Condition {
        let fields = try object(value, path: path, required: ["contract", "token_id"], optional: ["renter_only"])
        let contract = try address(fields["contract"]!, path: join(path, "contract"))
        let tokenID = try uint256(fields["token_id"]!, path: join(path, "token_id"))
        var renterOnly = false
        if let flag = fields["renter_only"] {
            guard case .bool(let value) = flag else {
                throw AccessPolicyError(path: join(path, "renter_only"), reason: "expected true or false, found \(flag.kind)")
            }
            renterOnly = value
        }
        return ERC4907Condition(contract: contract, tokenID: tokenID, renterOnly: renterOnly)
    }

    static func delegate(_ value: JSONValue, path: String, depth: Int, budget: inout Budget) throws(AccessPolicyError) -> DelegateCondition {
        let fields = try object(value, path: path, required: ["condition"], optional: ["registry"])
        let registry = try fields["registry"].map { v throws(AccessPolicyError) in try address(v, path: join(path, "registry")) } ?? DelegateCondition.canonicalRegistry
        let inner = try condition(fields["condition"]!, path: join(path, "condition"), depth: depth + 1, insideDelegate: true, budget: &budget)
        return DelegateCondition(condition: inner, registry: registry)
    }

    /// The limits, for a policy built in code.
    static func check(_ condition: PolicyCondition, path: String, depth: Int, insideDelegate: Bool, budget: inout Budget) throws(AccessPolicyError) {
        guard depth <= AccessPolicy.maxDepth else { throw AccessPolicyError(path: path, reason: "nested deeper than \(AccessPolicy.maxDepth) levels") }
        switch condition {
        case .all(let items), .any(let items):
            let kind = if case .all = condition { "all" } else { "any" }
            guard !items.isEmpty else { throw AccessPolicyError(path: join(path, kind), reason: "empty list: name at least one condition") }
            for (index, item) in items.enumerated() {
                try check(item, path: "\(join(path, kind))[\(index)]", depth: depth + 1, insideDelegate: insideDelegate, budget: &budget)
            }
        case .erc721(let leaf):
            try countLeaf(path: join(path, "erc721"), budget: &budget)
            guard leaf.minBalance >= 1 else { throw AccessPolicyError(path: join(path, "erc721.min_balance"), reason: "must be at least 1") }
            if let ranges = leaf.tokenIDs {
                var total: UInt64 = 0
                for range in ranges {
                    guard let count = range.count, count <= UInt64(AccessPolicy.maxTokenIDs) else {
                        throw AccessPolicyError(path: join(path, "erc721.token_ids"), reason: "range covers more than \(AccessPolicy.maxTokenIDs) ids")
                    }
                    total += count
                }
                budget.tokenIDs += Int(total)
                guard budget.tokenIDs <= AccessPolicy.maxTokenIDs else {
                    throw AccessPolicyError(path: join(path, "erc721.token_ids"), reason: "more than \(AccessPolicy.maxTokenIDs) token ids in one policy")
                }
                guard !ranges.isEmpty, leaf.minBalance <= total else {
                    throw AccessPolicyError(path: join(path, "erc721.min_balance"), reason: "\(leaf.minBalance) is more than the \(total) token ids listed")
                }
            }
        case .erc1155(let leaf):
            try countLeaf(path: join(path, "erc1155"), budget: &budget)
            guard leaf.minBalance >= 1 else { throw AccessPolicyError(path: join(path, "erc1155.min_balance"), reason: "must be at least 1") }
        case .erc4907:
            try countLeaf(path: join(path, "erc4907"), budget: &budget)
        case .delegate(let inner):
            guard !insideDelegate else { throw AccessPolicyError(path: join(path, "delegate"), reason: "a delegate condition cannot contain another") }
            try check(inner.condition, path: join(path, "delegate.condition"), depth: depth + 1, insideDelegate: true, budget: &budget)
        }
    }

    static func address(_ value: JSONValue, path: String) throws(AccessPolicyError) -> EthereumAddress {
        guard case .string(let text) = value else {
            throw AccessPolicyError(path: path, reason: "expected an address string, found \(value.kind)")
        }
        do {
            return try EthereumAddress(hex: text)
        } catch {
            throw AccessPolicyError(path: path, reason: error.description)
        }
    }

    static func uint256(_ value: JSONValue, path: String) throws(AccessPolicyError) -> UInt256 {
        guard case .string(let text) = value else {
            throw AccessPolicyError(path: path, reason: "expected a decimal string (uint256), found \(value.kind)")
        }
        guard let number = UInt256(decimal: text) else {
            throw AccessPolicyError(path: path, reason: "'\(EthereumHex.abbreviated(text, limit: 80))' is not a decimal uint256 (digits only, no leading zeros)")
        }
        return number
    }

    static func positive(_ value: JSONValue, path: String) throws(AccessPolicyError) -> UInt64 {
        guard case .integer(let number) = value, number >= 1 else {
            throw AccessPolicyError(path: path, reason: "expected a whole number of at least 1, found \(describe(value))")
        }
        return number
    }

    static func describe(_ value: JSONValue) -> String {
        switch value {
        case .integer(let number): "\(number)"
        case .number(let number): "\(number)"
        default: value.kind
        }
    }
}

/// JSON text to a ``JSONValue`` through Foundation's decoder (which reads big numbers and rejects
/// trailing garbage).
enum JSONDecoderShim {
    static func decode(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }
}
