import Ethereum
/// One contract read an evaluation needs; equal reads in one round are made once, whichever
/// viewers need them (`ownerOf(5)` serves every viewer of a policy listing token 5).
struct ContractRead: Hashable, Sendable {
    let call: EthCall
}

/// What a condition came to, or that it needs reads not made yet.
enum Verdict: Equatable {
    case yes(String)
    case no(String)
    case unknown
}

/// Evaluates a policy for one viewer against the answers of the reads made so far, in rounds: a
/// pass over the condition either decides it or lists the reads it still lacks (the first round
/// reads the viewer's holdings and incoming delegations; a second round reads the holdings of the
/// vaults that delegated to the viewer, and the delegation checks).
struct PolicyEvaluation {
    let viewer: EthereumAddress
    let policy: AccessPolicy
    let maxVaults: Int
    /// The decision, once there is one.
    private(set) var outcome: (granted: Bool, reason: String)?
    /// Accounts whose logs change the answer: the viewer and every vault looked at.
    private(set) var dependencies: [EthereumAddress]
    /// Tokens whose logs change the answer without naming the viewer (`contract:id`, ERC-4907:
    /// a new user replaces the old one in a log that does not name the old one).
    private(set) var tokens: Set<String> = []
    /// The earliest rental expiry (chain time) among the rentals that granted access.
    private(set) var rentalExpiry: UInt64?

    init(viewer: EthereumAddress, policy: AccessPolicy, maxVaults: Int) {
        self.viewer = viewer
        self.policy = policy
        self.maxVaults = maxVaults
        dependencies = [viewer]
    }

    /// One pass: decides, or adds the reads it needs to `missing`.
    mutating func run(results: [ContractRead: CallResult], missing: inout [ContractRead], requested: inout Set<ContractRead>) {
        guard outcome == nil else { return }
        var pass = Pass(results: results, missing: missing, requested: requested, maxVaults: maxVaults)
        let verdict = pass.condition(policy.condition, holder: viewer, delegation: nil)
        missing = pass.missing
        requested = pass.requested
        for vault in pass.vaults where !dependencies.contains(vault) { dependencies.append(vault) }
        tokens.formUnion(pass.tokens)
        switch verdict {
        case .yes(let reason):
            outcome = (true, reason)
            rentalExpiry = pass.rentalExpiry
        case .no(let reason):
            outcome = (false, reason)
        case .unknown:
            break
        }
    }

    /// Gives up (a round limit reached: should not happen with the policy limits).
    mutating func abandon() {
        if outcome == nil { outcome = (false, "the policy could not be evaluated in a bounded number of reads") }
    }
}

/// The viewer on whose behalf a vault's holdings are looked at, and the registry that says the
/// vault delegated to them.
private struct DelegationScope {
    let viewer: EthereumAddress
    let registry: EthereumAddress
}

private struct Pass {
    let results: [ContractRead: CallResult]
    var missing: [ContractRead]
    var requested: Set<ContractRead>
    let maxVaults: Int
    var vaults: [EthereumAddress] = []
    var tokens: Set<String> = []
    var rentalExpiry: UInt64?

    init(results: [ContractRead: CallResult], missing: [ContractRead], requested: Set<ContractRead>, maxVaults: Int) {
        self.results = results
        self.missing = missing
        self.requested = requested
        self.maxVaults = maxVaults
    }

    /// The answer of a read, or nil after asking for it.
    mutating func read(_ target: EthereumAddress, _ data: [UInt8], direct: Bool = false) -> CallResult? {
        let key = ContractRead(call: EthCall(to: target, data: data, direct: direct))
        if let result = results[key] { return result }
        if requested.insert(key).inserted { missing.append(key) }
        return nil
    }

    /// A uint256 answer; a revert or an unreadable answer counts as zero.
    mutating func uint(_ target: EthereumAddress, _ data: [UInt8]) -> UInt256?? {
        guard let result = read(target, data) else { return nil }
        guard let bytes = result.data, let value = try? ABI.decode(.uint, from: bytes).uint else { return .some(nil) }
        return .some(value)
    }

    /// An address answer; nil inside when it reverted (`ownerOf` of a token that does not exist).
    mutating func address(_ target: EthereumAddress, _ data: [UInt8]) -> EthereumAddress?? {
        guard let result = read(target, data) else { return nil }
        guard let bytes = result.data, let value = try? ABI.decode(.address, from: bytes).address else { return .some(nil) }
        return .some(value)
    }

    /// A bool answer; false when it reverted.
    mutating func bool(_ target: EthereumAddress, _ data: [UInt8]) -> Bool? {
        guard let result = read(target, data) else { return nil }
        guard let bytes = result.data, let value = try? ABI.decode(.bool, from: bytes).bool else { return false }
        return value
    }

    static let noRights = ABI.Value.bytes32([UInt8](repeating: 0, count: 32))

    mutating func condition(_ condition: PolicyCondition, holder: EthereumAddress, delegation: DelegationScope?) -> Verdict {
        switch condition {
        case .all(let items):
            var reasons: [String] = []
            var unknown = false
            for item in items {
                switch self.condition(item, holder: holder, delegation: delegation) {
                case .no(let reason): return .no(reason)
                case .yes(let reason): reasons.append(reason)
                case .unknown: unknown = true
                }
            }
            return unknown ? .unknown : .yes(reasons.joined(separator: "; and "))
        case .any(let items):
            var reasons: [String] = []
            var unknown = false
            for item in items {
                switch self.condition(item, holder: holder, delegation: delegation) {
                case .yes(let reason): return .yes(reason)
                case .no(let reason): reasons.append(reason)
                case .unknown: unknown = true
                }
            }
            return unknown ? .unknown : .no(reasons.count == 1 ? reasons[0] : "none of the conditions holds: " + reasons.joined(separator: "; "))
        case .erc721(let leaf):
            return erc721(leaf, holder: holder, delegation: delegation)
        case .erc1155(let leaf):
            return erc1155(leaf, holder: holder, delegation: delegation)
        case .erc4907(let leaf):
            return erc4907(leaf, holder: holder, delegation: delegation)
        case .delegate(let leaf):
            return delegate(leaf, viewer: holder)
        }
    }

    private func who(_ holder: EthereumAddress, _ delegation: DelegationScope?) -> String {
        delegation == nil ? "the viewer" : "vault \(holder)"
    }

    mutating func erc721(_ leaf: ERC721Condition, holder: EthereumAddress, delegation: DelegationScope?) -> Verdict {
        let contract = leaf.contract
        guard let ids = leaf.tokenIDs.map({ _ in leaf.expandedTokenIDs }) else {
            let balance = uint(contract, ABI.call("balanceOf(address)", [.address(holder)]))
            var covered: Bool? = true
            if let delegation {
                covered = bool(delegation.registry, ABI.call("checkDelegateForContract(address,address,address,bytes32)", [.address(delegation.viewer), .address(holder), .address(contract), Self.noRights]))
            }
            guard let balance, let covered else { return .unknown }
            let count = balance ?? .zero
            guard count >= UInt256(leaf.minBalance) else {
                return .no("\(who(holder, delegation)) holds \(count) token\(count == UInt256(1) ? "" : "s") of \(contract) (ERC-721), needs \(leaf.minBalance)")
            }
            guard covered else { return .no("vault \(holder)'s delegation to the viewer does not cover \(contract)") }
            return .yes("\(who(holder, delegation)) holds \(count) token\(count == UInt256(1) ? "" : "s") of \(contract) (ERC-721)")
        }
        var owners: [EthereumAddress?] = []
        var unknown = false
        for id in ids {
            switch address(contract, ABI.call("ownerOf(uint256)", [.uint(id)])) {
            case .none: unknown = true
            case .some(let owner): owners.append(owner)
            }
        }
        guard !unknown else { return .unknown }
        var owned = zip(ids, owners).filter { $0.1 == holder }.map(\.0)
        if let delegation, !owned.isEmpty {
            guard let wholeContract = bool(delegation.registry, ABI.call("checkDelegateForContract(address,address,address,bytes32)", [.address(delegation.viewer), .address(holder), .address(contract), Self.noRights])) else {
                return .unknown
            }
            if !wholeContract {
                var covered: [UInt256] = []
                for id in owned {
                    switch bool(delegation.registry, ABI.call("checkDelegateForERC721(address,address,address,uint256,bytes32)", [.address(delegation.viewer), .address(holder), .address(contract), .uint(id), Self.noRights])) {
                    case .none: unknown = true
                    case .some(true): covered.append(id)
                    case .some(false): break
                    }
                }
                guard !unknown else { return .unknown }
                owned = covered
            }
        }
        let listed = leaf.tokenIDs!.map(\.description).joined(separator: ", ")
        guard owned.count >= leaf.minBalance else {
            let what = delegation == nil ? "owns" : "owns, under a delegation to the viewer,"
            return .no("\(who(holder, delegation)) \(what) \(owned.count) of tokens \(listed) of \(contract) (ERC-721), needs \(leaf.minBalance)")
        }
        let shown = owned.prefix(5).map(\.description).joined(separator: ", ") + (owned.count > 5 ? "…" : "")
        return .yes("\(who(holder, delegation)) owns token\(owned.count == 1 ? "" : "s") \(shown) of \(contract) (ERC-721)")
    }

    mutating func erc1155(_ leaf: ERC1155Condition, holder: EthereumAddress, delegation: DelegationScope?) -> Verdict {
        let contract = leaf.contract
        let balance = uint(contract, ABI.call("balanceOf(address,uint256)", [.address(holder), .uint(leaf.tokenID)]))
        var delegated: UInt256?? = .some(.max)
        if let delegation {
            delegated = uint(delegation.registry, ABI.call("checkDelegateForERC1155(address,address,address,uint256,bytes32)", [.address(delegation.viewer), .address(holder), .address(contract), .uint(leaf.tokenID), Self.noRights]))
        }
        guard let balance, let delegated else { return .unknown }
        let held = balance ?? .zero
        let usable = min(held, delegated ?? .zero)
        guard usable >= UInt256(leaf.minBalance) else {
            if held >= UInt256(leaf.minBalance) {
                return .no("vault \(holder) delegated only \(usable) of token \(leaf.tokenID) of \(contract) to the viewer, needs \(leaf.minBalance)")
            }
            return .no("\(who(holder, delegation)) holds \(held) of token \(leaf.tokenID) of \(contract) (ERC-1155), needs \(leaf.minBalance)")
        }
        return .yes("\(who(holder, delegation)) holds \(held) of token \(leaf.tokenID) of \(contract) (ERC-1155)")
    }

    mutating func erc4907(_ leaf: ERC4907Condition, holder: EthereumAddress, delegation: DelegationScope?) -> Verdict {
        let contract = leaf.contract
        tokens.insert("\(contract.lowercasedHex):\(leaf.tokenID)")
        let user = address(contract, ABI.call("userOf(uint256)", [.uint(leaf.tokenID)]))
        let expires = uint(contract, ABI.call("userExpires(uint256)", [.uint(leaf.tokenID)]))
        var owner: EthereumAddress?? = .some(nil)
        if !leaf.renterOnly { owner = address(contract, ABI.call("ownerOf(uint256)", [.uint(leaf.tokenID)])) }
        var covered: Bool? = true
        if let delegation {
            covered = bool(delegation.registry, ABI.call("checkDelegateForERC721(address,address,address,uint256,bytes32)", [.address(delegation.viewer), .address(holder), .address(contract), .uint(leaf.tokenID), Self.noRights]))
        }
        guard let user, let expires, let owner, let covered else { return .unknown }
        let isUser = user == holder
        let isOwner = owner == holder
        guard isUser || isOwner else {
            return .no(leaf.renterOnly
                ? "\(who(holder, delegation)) is not the current user (ERC-4907 renter) of token \(leaf.tokenID) of \(contract)"
                : "\(who(holder, delegation)) is neither the current user (ERC-4907 renter) nor the owner of token \(leaf.tokenID) of \(contract)")
        }
        guard covered else { return .no("vault \(holder)'s delegation to the viewer does not cover token \(leaf.tokenID) of \(contract)") }
        if isUser, !isOwner {
            let until = expires?.uint64 ?? UInt64.max
            rentalExpiry = min(rentalExpiry ?? .max, until)
            return .yes("\(who(holder, delegation)) is the user (ERC-4907 renter) of token \(leaf.tokenID) of \(contract) until \(until)")
        }
        return .yes("\(who(holder, delegation)) owns token \(leaf.tokenID) of \(contract) (ERC-4907)")
    }

    mutating func delegate(_ leaf: DelegateCondition, viewer: EthereumAddress) -> Verdict {
        guard let result = read(leaf.registry, ABI.call("getIncomingDelegations(address)", [.address(viewer)]), direct: true) else {
            return .unknown
        }
        let entries = result.data.flatMap { try? ABI.decode(.array(ContractABI.delegationType), from: $0).array } ?? []
        let innerContracts = Set(AccessPolicy(chainID: 1, condition: leaf.condition).contracts)
        var candidates: [EthereumAddress] = []
        for entry in entries {
            guard let fields = entry.tuple, fields.count == 7,
                let kind = fields[0].uint?.uint64, let to = fields[1].address, let from = fields[2].address,
                let rights = fields[3].bytes, let contract = fields[4].address
            else { continue }
            guard to == viewer, rights.allSatisfy({ $0 == 0 }) else { continue }
            switch ContractABI.DelegationKind(rawValue: UInt8(truncatingIfNeeded: kind)) {
            case .all: break
            case .contract, .erc721, .erc1155: guard innerContracts.contains(contract) else { continue }
            default: continue
            }
            if !candidates.contains(from) { candidates.append(from) }
            if candidates.count == maxVaults { break }
        }
        guard !candidates.isEmpty else {
            return .no("no vault has delegated to the viewer (delegate.xyz at \(leaf.registry)) for \(innerContracts.map(\.description).sorted().joined(separator: ", "))")
        }
        var reasons: [String] = []
        var unknown = false
        for vault in candidates {
            if !vaults.contains(vault) { vaults.append(vault) }
            switch condition(leaf.condition, holder: vault, delegation: DelegationScope(viewer: viewer, registry: leaf.registry)) {
            case .yes(let reason): return .yes("through a delegation (delegate.xyz): \(reason)")
            case .no(let reason): reasons.append(reason)
            case .unknown: unknown = true
            }
        }
        if unknown { return .unknown }
        return .no("no vault that delegated to the viewer qualifies: " + reasons.joined(separator: "; "))
    }
}
