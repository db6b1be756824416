import Foundation
import Ethereum

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
