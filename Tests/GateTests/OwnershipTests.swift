import Foundation
import TestSupport
import Testing
@testable import Gate
import Redis
import LocalChain
import Ethereum

/// Ownership answers against the real local chain (fixtures/chain) and a real redis-server.
@Suite struct OwnershipTests {
    let chain = TestChain.shared

    struct Fixture {
        let rpc: EthereumRPC
        let service: OwnershipService

        init(chain: LocalChainProcess = TestChain.shared, multicall: Bool = false, redis: RedisClient? = nil, configuration: OwnershipConfiguration = OwnershipConfiguration(), timeout: Duration = .seconds(5)) {
            rpc = makeRPC(rpcConfiguration(chain, multicall: multicall, timeout: timeout))
            service = OwnershipService(rpcs: [rpc], redis: redis, configuration: configuration)
        }

        /// Starts a follower polling every 100 ms; cancel the task to stop it.
        func follow() async throws -> (OwnershipFollower, Task<Void, Never>) {
            let follower = try OwnershipFollower(service: service, chainID: rpc.configuration.chainID, interval: .milliseconds(100))
            try await follower.poll()
            let task = Task { await follower.run() }
            return (follower, task)
        }

        func check(_ address: EthereumAddress, _ policy: AccessPolicy) async throws -> OwnershipAnswer {
            try await service.check(address: address, policy: policy)
        }

        func shutdown() async throws { try await rpc.shutdown() }
    }

    func policy(_ condition: PolicyCondition) -> AccessPolicy { AccessPolicy(chainID: chain.chainID, condition: condition) }

    func policy(json: String) throws -> AccessPolicy {
        try AccessPolicy(json: json
            .replacingOccurrences(of: "ERC721", with: chain.contract("erc721").checksummed)
            .replacingOccurrences(of: "ERC1155", with: chain.contract("erc1155").checksummed)
            .replacingOccurrences(of: "ERC4907", with: chain.contract("erc4907").checksummed))
    }

    @Test func ownerGrantedNonOwnerDeniedWithReasonThenL1() async throws {
        let fixture = Fixture()
        let owner = TestChain.freshAddress()
        let stranger = TestChain.freshAddress()
        try await chain.call("sg_mint721", [owner.json, .integer(TestChain.freshTokenID())])
        let policy = policy(.erc721(ERC721Condition(contract: chain.contract("erc721"))))

        let granted = try await fixture.check(owner, policy)
        #expect(granted.granted && granted.source == .chain)
        #expect(granted.reason == "the viewer holds 1 token of \(chain.contract("erc721")) (ERC-721)")
        let denied = try await fixture.check(stranger, policy)
        #expect(!denied.granted)
        #expect(denied.reason == "the viewer holds 0 tokens of \(chain.contract("erc721")) (ERC-721), needs 1")

        let again = try await fixture.check(owner, policy)
        #expect(again.granted && again.source == .l1)
        #expect(try await fixture.check(stranger, policy).source == .l1)
        try await fixture.shutdown()
    }

    @Test func tokenIDsAndRanges() async throws {
        let fixture = Fixture(multicall: true)
        let holder = TestChain.freshAddress()
        let base = TestChain.freshTokenID() * 100
        try await chain.call("sg_mint721", [holder.json, .integer(base + 5)])
        try await chain.call("sg_mint721", [holder.json, .integer(base + 6)])
        try await chain.call("sg_mint721", [TestChain.freshAddress().json, .integer(base + 7)])

        let exact = try policy(json: #"{"chain_id":31337,"condition":{"erc721":{"contract":"ERC721","token_ids":["\#(base + 1)","\#(base + 5)"]}}}"#)
        #expect(try await fixture.check(holder, exact).granted)
        let range = try policy(json: #"{"chain_id":31337,"condition":{"erc721":{"contract":"ERC721","token_ids":["\#(base + 4)-\#(base + 8)"],"min_balance":2}}}"#)
        let inRange = try await fixture.check(holder, range)
        #expect(inRange.granted)
        #expect(inRange.reason.contains("owns tokens \(base + 5), \(base + 6) of"))
        let three = try policy(json: #"{"chain_id":31337,"condition":{"erc721":{"contract":"ERC721","token_ids":["\#(base + 4)-\#(base + 8)"],"min_balance":3}}}"#)
        let short = try await fixture.check(holder, three)
        #expect(!short.granted)
        #expect(short.reason == "the viewer owns 2 of tokens \(base + 4)-\(base + 8) of \(chain.contract("erc721")) (ERC-721), needs 3")
        let elsewhere = try policy(json: #"{"chain_id":31337,"condition":{"erc721":{"contract":"ERC721","token_ids":["\#(base + 1)-\#(base + 3)","\#(base + 7)"]}}}"#)
        #expect(try await !fixture.check(holder, elsewhere).granted)
        try await fixture.shutdown()
    }

    @Test func erc1155Balance() async throws {
        let fixture = Fixture()
        let holder = TestChain.freshAddress()
        let id = TestChain.freshTokenID()
        try await chain.call("sg_mint1155", [holder.json, .integer(id), 3])
        let enough = try policy(json: #"{"chain_id":31337,"condition":{"erc1155":{"contract":"ERC1155","token_id":"\#(id)","min_balance":3}}}"#)
        let granted = try await fixture.check(holder, enough)
        #expect(granted.granted)
        #expect(granted.reason == "the viewer holds 3 of token \(id) of \(chain.contract("erc1155")) (ERC-1155)")
        let tooMany = try policy(json: #"{"chain_id":31337,"condition":{"erc1155":{"contract":"ERC1155","token_id":"\#(id)","min_balance":4}}}"#)
        let denied = try await fixture.check(holder, tooMany)
        #expect(!denied.granted)
        #expect(denied.reason == "the viewer holds 3 of token \(id) of \(chain.contract("erc1155")) (ERC-1155), needs 4")
        try await fixture.shutdown()
    }

    @Test func erc4907RenterAdmittedUntilExpiry() async throws {
        let fixture = Fixture(multicall: true)
        let (_, follower) = try await fixture.follow()
        let owner = TestChain.freshAddress()
        let renter = TestChain.freshAddress()
        let id = TestChain.freshTokenID()
        try await chain.call("sg_mint721", ["erc4907", owner.json, .integer(id)])
        let head = try await chain.call("eth_getBlockByNumber", ["latest", false])
        let now = try #require(head["timestamp"]?.uint64)
        try await chain.call("sg_setUser", ["erc4907", .integer(id), renter.json, .integer(now + 60)])

        let anyone = try policy(json: #"{"chain_id":31337,"condition":{"erc4907":{"contract":"ERC4907","token_id":"\#(id)"}}}"#)
        let renterOnly = try policy(json: #"{"chain_id":31337,"condition":{"erc4907":{"contract":"ERC4907","token_id":"\#(id)","renter_only":true}}}"#)
        #expect(try await eventually { try await fixture.check(renter, anyone).granted })
        #expect(try await fixture.check(renter, anyone).source == .l1)
        #expect(try await fixture.check(owner, anyone).granted)
        let ownerAsRenter = try await fixture.check(owner, renterOnly)
        #expect(!ownerAsRenter.granted)
        #expect(ownerAsRenter.reason.contains("is not the current user (ERC-4907 renter)"))

        // Time passes on the chain (no log): the cached grant lapses with the rental.
        try await chain.call("evm_increaseTime", [120])
        #expect(try await eventually { try await !fixture.check(renter, anyone).granted })
        let refused = try await fixture.check(renter, anyone)
        #expect(refused.reason.contains("is neither the current user (ERC-4907 renter) nor the owner"))
        #expect(try await fixture.check(owner, anyone).granted)
        follower.cancel()
        await follower.value
        try await fixture.shutdown()
    }

    @Test func delegateAdmittedThenRefusedAfterRevocation() async throws {
        let fixture = Fixture()
        let (_, follower) = try await fixture.follow()
        let vault = try await TestChain.importedAccount()
        let viewer = TestChain.freshAddress()
        let id = TestChain.freshTokenID()
        try await chain.call("sg_mint721", [vault.json, .integer(id)])
        let policy = try policy(json: #"{"chain_id":31337,"condition":{"delegate":{"condition":{"erc721":{"contract":"ERC721"}}}}}"#)

        let before = try await fixture.check(viewer, policy)
        #expect(!before.granted)
        #expect(before.reason.hasPrefix("no vault has delegated to the viewer"))

        try await chain.call("sg_delegateAll", [vault.json, viewer.json])
        #expect(try await eventually { try await fixture.check(viewer, policy).granted })
        let granted = try await fixture.check(viewer, policy)
        #expect(granted.reason == "through a delegation (delegate.xyz): vault \(vault) holds 1 token of \(chain.contract("erc721")) (ERC-721)")

        try await chain.call("sg_delegateAll", [vault.json, viewer.json, .string(EthereumHex.encode([UInt8](repeating: 0, count: 32))), false])
        #expect(try await eventually(within: 10) { try await !fixture.check(viewer, policy).granted })
        follower.cancel()
        await follower.value
        try await fixture.shutdown()
    }

    @Test func tokenDelegationCoversOnlyThatToken() async throws {
        let fixture = Fixture(multicall: true)
        let vault = try await TestChain.importedAccount()
        let viewer = TestChain.freshAddress()
        let delegated = TestChain.freshTokenID()
        let other = TestChain.freshTokenID()
        try await chain.call("sg_mint721", [vault.json, .integer(delegated)])
        try await chain.call("sg_mint721", [vault.json, .integer(other)])
        try await chain.call("sg_delegateERC721", [vault.json, viewer.json, "erc721", .integer(delegated)])

        let covered = try policy(json: #"{"chain_id":31337,"condition":{"delegate":{"condition":{"erc721":{"contract":"ERC721","token_ids":["\#(delegated)"]}}}}}"#)
        let viaMulticall = try await fixture.check(viewer, covered)
        #expect(viaMulticall.granted && viaMulticall.block != nil)
        // Without Multicall3 nor follower, the rounds of a delegation are pinned by eth_blockNumber.
        let batchOnly = Fixture()
        let viaBatch = try await batchOnly.check(viewer, covered)
        #expect(viaBatch.granted && viaBatch.block != nil)
        try await batchOnly.shutdown()
        let notCovered = try policy(json: #"{"chain_id":31337,"condition":{"delegate":{"condition":{"erc721":{"contract":"ERC721","token_ids":["\#(other)"]}}}}}"#)
        let refused = try await fixture.check(viewer, notCovered)
        #expect(!refused.granted)
        #expect(refused.reason.contains("under a delegation to the viewer"))
        // The whole contract is not delegated either.
        #expect(try await !fixture.check(viewer, policy(.delegate(DelegateCondition(condition: .erc721(ERC721Condition(contract: chain.contract("erc721"))))))).granted)
        try await fixture.shutdown()
    }

    @Test func soldTokenStopsWorkingWithinABlock() async throws {
        try await withRedis { redis in
            let client = redis.client()
            let fixture = Fixture(redis: client)
            let (follower, task) = try await fixture.follow()
            let seller = TestChain.freshAddress()
            let buyer = TestChain.freshAddress()
            let id = TestChain.freshTokenID()
            try await chain.call("sg_mint721", [seller.json, .integer(id)])
            let policy = try policy(json: #"{"chain_id":31337,"condition":{"erc721":{"contract":"ERC721","token_ids":["\#(id)"]}}}"#)

            #expect(try await eventually { try await fixture.check(seller, policy).granted })
            #expect(try await fixture.check(seller, policy).source == .l1)
            #expect(try await !fixture.check(buyer, policy).granted)

            let receipt = try await chain.call("sg_transfer721", [seller.json, buyer.json, .integer(id)])
            let saleBlock = try #require(receipt["blockNumber"]?.uint64)
            var refusal: OwnershipAnswer?
            #expect(try await eventually(within: 10) {
                let answer = try await fixture.check(seller, policy)
                if !answer.granted { refusal = answer }
                return !answer.granted
            })
            let refused = try #require(refusal)
            #expect(refused.source == .chain)
            #expect((refused.block ?? 0) >= saleBlock)
            #expect(refused.reason == "the viewer owns 0 of tokens \(id) of \(chain.contract("erc721")) (ERC-721), needs 1")
            #expect((follower.lastProcessedBlock ?? 0) >= saleBlock)
            #expect(try await eventually(within: 10) { try await fixture.check(buyer, policy).granted })
            // The follower also dropped the answers from Redis.
            let keys = try await client.send(["KEYS", "{sg}:gate:own:31337:\(seller.lowercasedHex):*"])
            for key in keys.array ?? [] {
                let value = try await client.send(["GET", key.text!])
                #expect(!(value.text ?? "").contains("\"g\":true"))
            }
            task.cancel()
            await task.value
            try await fixture.shutdown()
        }
    }

    @Test func answersReadPastASlowFollowerAreStillCached() async throws {
        // A follower whose head is never recent enough to read at (a loaded host): evaluations read
        // `latest`, and ask the block number in the same batch so the answer can still be kept.
        let fixture = Fixture(configuration: OwnershipConfiguration(followerStaleness: .zero))
        let (_, task) = try await fixture.follow()
        let holder = TestChain.freshAddress()
        try await chain.call("sg_mint721", [holder.json, .integer(TestChain.freshTokenID())])
        let policy = policy(.erc721(ERC721Condition(contract: chain.contract("erc721"))))
        let first = try await fixture.check(holder, policy)
        #expect(first.granted && first.source == .chain)
        #expect((first.block ?? 0) > 0)
        let second = try await fixture.check(holder, policy)
        #expect(second.granted && second.source == .l1 && second.block == first.block)
        task.cancel()
        await task.value
        try await fixture.shutdown()
    }

    @Test func secondServiceSharingRedisGetsL2() async throws {
        try await withRedis { redis in
            let first = Fixture(redis: redis.client())
            let second = Fixture(redis: redis.client())
            let holder = TestChain.freshAddress()
            try await chain.call("sg_mint721", [holder.json, .integer(TestChain.freshTokenID())])
            let policy = policy(.erc721(ERC721Condition(contract: chain.contract("erc721"))))
            #expect(try await first.check(holder, policy).source == .chain)
            let shared = try await second.check(holder, policy)
            #expect(shared.granted && shared.source == .l2)
            #expect(try await second.check(holder, policy).source == .l1)
            try await first.shutdown()
            try await second.shutdown()
        }
    }

    @Test func answerFromL2IsDroppedByThisReplicasFollower() async throws {
        try await withRedis { redis in
            let first = Fixture(redis: redis.client())
            let second = Fixture(redis: redis.client())
            // Every replica runs a follower (an answer read without one, at `latest` with no block
            // number, is not trusted by a replica that follows).
            let (_, follower) = try await second.follow()
            let (_, firstFollower) = try await first.follow()
            let seller = TestChain.freshAddress()
            let id = TestChain.freshTokenID()
            try await chain.call("sg_mint721", [seller.json, .integer(id)])
            let policy = try policy(json: #"{"chain_id":31337,"condition":{"erc721":{"contract":"ERC721","token_ids":["\#(id)"]}}}"#)
            // The followers read at their last processed block: the mint counts once they saw it.
            #expect(try await eventually { try await first.check(seller, policy).granted })
            let shared = try await second.check(seller, policy)
            #expect(shared.granted && shared.source == .l2)
            try await chain.call("sg_transfer721", [seller.json, TestChain.freshAddress().json, .integer(id)])
            #expect(try await eventually(within: 10) { try await !second.check(seller, policy).granted })
            follower.cancel()
            firstFollower.cancel()
            await follower.value
            await firstFollower.value
            try await first.shutdown()
            try await second.shutdown()
        }
    }

    @Test func unsupportedChain() async throws {
        let fixture = Fixture()
        let policy = AccessPolicy(chainID: 1, condition: .erc721(ERC721Condition(contract: chain.contract("erc721"))))
        await #expect(throws: OwnershipError.unsupportedChain(1)) { try await fixture.check(TestChain.freshAddress(), policy) }
        try await fixture.shutdown()
    }

    @Test func stoppedChainIsUnavailable() async throws {
        let own = try await LocalChainProcess.start()
        let fixture = Fixture(chain: own, timeout: .seconds(1))
        let policy = policy(.erc721(ERC721Condition(contract: own.contract("erc721"))))
        #expect(try await !fixture.check(TestChain.freshAddress(), policy).granted)
        own.stop()
        do {
            _ = try await fixture.service.check(address: TestChain.freshAddress(), policy: policy)
            Issue.record("expected unavailable")
        } catch {
            guard case .unavailable = error else { Issue.record("expected unavailable, got \(error)"); return }
        }
        try await fixture.shutdown()
    }

    /// The bench target: 10,000 checks by 100 distinct holders within one TTL.
    @Test(arguments: [false, true])
    func callCountsWithCoalescing(multicall: Bool) async throws {
        let fixture = Fixture(multicall: multicall)
        let holders = (0..<100).map { _ in TestChain.freshAddress() }
        for holder in holders.prefix(10) { try await chain.call("sg_mint721", [holder.json, .integer(TestChain.freshTokenID())]) }
        let policy = policy(.erc721(ERC721Condition(contract: chain.contract("erc721"))))
        _ = try await fixture.rpc.chainID()
        let before = (fixture.rpc.httpRequestCount, fixture.rpc.requestCount)
        let started = ContinuousClock.now
        let granted = try await withThrowingTaskGroup(of: Bool.self) { group in
            for round in 0..<100 {
                for holder in holders {
                    _ = round
                    group.addTask { try await fixture.check(holder, policy).granted }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        let http = fixture.rpc.httpRequestCount - before.0
        let calls = fixture.rpc.requestCount - before.1
        print("ownership call count: multicall=\(multicall) checks=10000 holders=100 http_requests=\(http) jsonrpc_requests=\(calls) elapsed=\(ContinuousClock.now - started)")
        #expect(granted == 1000)
        #expect(calls <= (multicall ? 10 : 100))
        #expect(http <= calls)
        try await fixture.shutdown()
    }
}
