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
