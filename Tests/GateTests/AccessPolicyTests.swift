import Foundation
import Testing
@testable import Gate
import Ethereum

@Suite struct AccessPolicyTests {
    static let c721 = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    static let c1155 = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
    static let c4907 = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"

    @Test func readsTheDocumentedExample() throws {
        let json = """
        {"chain_id":31337,"condition":{"any":[{"erc721":{"contract":"\(Self.c721)","token_ids":["1","5-9"],"min_balance":1}},\
        {"erc1155":{"contract":"\(Self.c1155)","token_id":"7"}},{"erc4907":{"contract":"\(Self.c4907)","token_id":"3"}},\
        {"delegate":{"condition":{"erc721":{"contract":"\(Self.c721)"}}}}]}}
        """
        let policy = try AccessPolicy(json: json)
        #expect(policy.chainID == 31337)
        guard case .any(let items) = policy.condition, items.count == 4 else { Issue.record("not any of 4"); return }
        guard case .erc721(let nft) = items[0] else { Issue.record("not erc721"); return }
        #expect(nft.tokenIDs?.map(\.description) == ["1", "5-9"])
        #expect(nft.expandedTokenIDs.map(\.description) == ["1", "5", "6", "7", "8", "9"])
        guard case .erc1155(let multi) = items[1] else { Issue.record("not erc1155"); return }
        #expect(multi.minBalance == 1 && multi.tokenID == UInt256(7))
        guard case .erc4907(let rental) = items[2] else { Issue.record("not erc4907"); return }
        #expect(!rental.renterOnly)
        guard case .delegate(let delegate) = items[3] else { Issue.record("not delegate"); return }
        #expect(delegate.registry == DelegateCondition.canonicalRegistry)
        #expect(policy.contracts.map(\.checksummed) == [Self.c721, Self.c1155, Self.c4907, DelegateCondition.canonicalRegistry.checksummed])

        // Codable round trip through JSONDecoder/JSONEncoder, and a stable id.
        let encoded = try JSONEncoder().encode(policy)
        let decoded = try JSONDecoder().decode(AccessPolicy.self, from: encoded)
        #expect(decoded == policy)
        #expect(decoded.policyID == policy.policyID)
        #expect(policy.policyID.count == 64)
    }

    @Test func policyIDIgnoresSpellingButNotMeaning() throws {
        let a = try AccessPolicy(json: #"{"chain_id":1,"condition":{"erc721":{"contract":"\#(Self.c721)","token_ids":["5-9","1"]}}}"#)
        let b = try AccessPolicy(json: #"{"condition":{"erc721":{"min_balance":1,"token_ids":["1","5-9"],"contract":"\#(Self.c721.lowercased())"}},"chain_id":1}"#)
        let c = try AccessPolicy(json: #"{"chain_id":1,"condition":{"erc721":{"contract":"\#(Self.c721)","token_ids":["1","5-9"],"min_balance":2}}}"#)
        #expect(a.policyID == b.policyID)
        #expect(a.policyID != c.policyID)
        #expect(a.canonicalJSON == #"{"chain_id":1,"condition":{"erc721":{"contract":"0x5fbdb2315678afecb367f032d93f642f64180aa3","min_balance":1,"token_ids":["1","5-9"]}}}"#)
    }

    @Test(arguments: [
        (#"{"chain_id":1}"#, "condition: missing"),
        (#"{"chain_id":0,"condition":{"erc721":{"contract":"C721"}}}"#, "chain_id: expected a positive whole number, found 0"),
        (#"{"chain_id":"1","condition":{"erc721":{"contract":"C721"}}}"#, "chain_id: expected a positive whole number, found a string"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"C721"}},"extra":1}"#, "extra: unknown field (expected chain_id, condition)"),
        (#"{"chain_id":1,"condition":{"any":[{"erc721":{"contract":"C721"}},{"erc721":{"contract":"0x5FbDB2315678afecb367f032d93F642f64180aA3"}}]}}"#,
         "condition.any[1].erc721.contract: bad checksum: the mixed-case address does not match its EIP-55 checksum (0x5FbDB2315678afecb367f032d93F642f64180aa3)"),
        (#"{"chain_id":1,"condition":{"any":[]}}"#, "condition.any: empty list: name at least one condition"),
        (#"{"chain_id":1,"condition":{}}"#, "condition: empty condition: expected one of all, any, erc721, erc1155, erc4907, delegate"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"C721"},"erc1155":{}}}"#, "condition: a condition has exactly one key, found erc1155, erc721"),
        (#"{"chain_id":1,"condition":{"erc20":{}}}"#, "condition.erc20: unknown condition (expected all, any, erc721, erc1155, erc4907 or delegate)"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"C721","token_ids":["9-5"]}}}"#, "condition.erc721.token_ids[0]: '9-5' is not a token id or an ascending range (decimal uint256, \"5\" or \"5-9\")"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"C721","token_ids":[5]}}}"#, "condition.erc721.token_ids[0]: expected a decimal string (\"5\" or \"5-9\"), found a number"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"C721","token_ids":["007"]}}}"#, "condition.erc721.token_ids[0]: '007' is not a token id or an ascending range (decimal uint256, \"5\" or \"5-9\")"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"C721","token_ids":["1-1001"]}}}"#, "condition.erc721.token_ids[0]: range covers more than 1000 ids"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"C721","token_ids":["1-9","9"]}}}"#, "condition.erc721.token_ids[1]: overlaps \"1-9\" listed before"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"C721","token_ids":["1","2"],"min_balance":3}}}"#, "condition.erc721.min_balance: 3 is more than the 2 token ids listed"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"C721","min_balance":0}}}"#, "condition.erc721.min_balance: expected a whole number of at least 1, found 0"),
        (#"{"chain_id":1,"condition":{"erc1155":{"contract":"C721"}}}"#, "condition.erc1155.token_id: missing"),
        (#"{"chain_id":1,"condition":{"erc1155":{"contract":"C721","token_id":"115792089237316195423570985008687907853269984665640564039457584007913129639936"}}}"#,
         "condition.erc1155.token_id: '115792089237316195423570985008687907853269984665640564039457584007913129639936' is not a decimal uint256 (digits only, no leading zeros)"),
        (#"{"chain_id":1,"condition":{"erc4907":{"contract":"C721","token_id":"3","renter_only":"yes"}}}"#, "condition.erc4907.renter_only: expected true or false, found a string"),
        (#"{"chain_id":1,"condition":{"delegate":{"condition":{"delegate":{"condition":{"erc721":{"contract":"C721"}}}}}}}"#, "condition.delegate.condition.delegate: a delegate condition cannot contain another"),
        (#"{"chain_id":1,"condition":{"all":[{"any":[{"all":[{"any":[{"erc721":{"contract":"C721"}}]}]}]}]}}"#, "condition.all[0].any[0].all[0].any[0]: nested deeper than 4 levels"),
        (#"{"chain_id":1,"condition":{"erc721":{"contract":"0x1234"}}}"#, "condition.erc721.contract: address has 4 hex digits after 0x, expected 40"),
        ("[1]", "expected an object, found an array"),
    ])
    func refusesWithPathAndReason(json: String, message: String) {
        let text = json.replacingOccurrences(of: "C721", with: Self.c721)
        #expect(throws: AccessPolicyError.self) { try AccessPolicy(json: text) }
        do {
            _ = try AccessPolicy(json: text)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func limitsLeavesAndTotalTokenIDs() throws {
        let leaf = #"{"erc721":{"contract":"\#(Self.c721)"}}"#
        let seventeen = #"{"chain_id":1,"condition":{"any":[\#(Array(repeating: leaf, count: 17).joined(separator: ","))]}}"#
        #expect(throws: AccessPolicyError(path: "condition.any[16].erc721", reason: "more than 16 token conditions in one policy")) {
            try AccessPolicy(json: seventeen)
        }
        let ranges = (0..<3).map { #"{"erc721":{"contract":"\#(Self.c721)","token_ids":["\#($0 * 1000)-\#($0 * 1000 + 499)"]}}"# }
        let tooMany = #"{"chain_id":1,"condition":{"any":[\#(ranges.joined(separator: ","))]}}"#
        #expect(throws: AccessPolicyError(path: "condition.any[2].erc721.token_ids[0]", reason: "more than 1000 token ids in one policy")) {
            try AccessPolicy(json: tooMany)
        }
    }

    @Test func decodingInsideAnotherDocumentPrefixesThePath() throws {
        struct Asset: Decodable { let policy: AccessPolicy }
        let json = #"{"policy":{"chain_id":1,"condition":{"erc721":{"contract":"0x12"}}}}"#
        #expect(throws: AccessPolicyError(path: "policy.condition.erc721.contract", reason: "address has 2 hex digits after 0x, expected 40")) {
            try JSONDecoder().decode(Asset.self, from: Data(json.utf8))
        }
    }

    @Test func uint256DecimalRoundTrip() throws {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        #expect(UInt256(decimal: max) == UInt256.max)
        #expect(UInt256.max.description == max)
        #expect(UInt256(decimal: "0")?.description == "0")
        #expect(UInt256(decimal: "1234567890123456789012345")?.description == "1234567890123456789012345")
        #expect(UInt256(decimal: "-1") == nil)
        #expect(UInt256(decimal: "") == nil)
        #expect(UInt256(255).incremented() == UInt256(256))
        #expect(UInt256.max.incremented() == nil)
        #expect(UInt256(1000).subtracting(UInt256(1)) == UInt256(999))
        #expect(TokenIDRange(text: "5-9")?.count == 5)
    }
}
