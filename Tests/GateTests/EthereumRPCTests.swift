import Foundation
import Testing
@testable import Gate

#if canImport(Glibc)
import Glibc
import Ethereum
#endif

/// A TCP port on loopback that refuses connections (bound, then closed).
func deadPort() -> Int {
    let socket = BlackHole()
    let port = socket.port
    socket.close()
    return port
}

/// A listening socket that never accepts or answers: requests to it time out.
final class BlackHole: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(fd, $0, length) }
        }
        listen(fd, 64)
        withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
    deinit { close() }
}

@Suite struct EthereumRPCTests {
    let chain = TestChain.shared

    @Test func chainIDBlockNumberAndCode() async throws {
        let rpc = makeRPC(rpcConfiguration())
        defer { Task { try await rpc.shutdown() } }
        #expect(try await rpc.chainID() == 31337)
        let head = try await rpc.blockNumber()
        #expect(head >= 1)
        let code = try await rpc.code(at: chain.contract("erc721"))
        #expect(code.count > 100)
        #expect(try await rpc.code(at: TestChain.freshAddress()).isEmpty)
        try await rpc.shutdown()
    }

    @Test func callAndRevertIsAnAnswer() async throws {
        let rpc = makeRPC(rpcConfiguration())
        let holder = TestChain.freshAddress()
        let id = TestChain.freshTokenID()
        try await chain.call("sg_mint721", [holder.json, .integer(id)])
        let owner = try await rpc.call(EthCall(to: chain.contract("erc721"), data: ABI.call("ownerOf(uint256)", [.uint(UInt256(id))])))
        #expect(try owner.data.map { try ABI.decode(.address, from: $0) } == .address(holder))
        let missing = try await rpc.call(EthCall(to: chain.contract("erc721"), data: ABI.call("ownerOf(uint256)", [.uint(UInt256(id + 999_999_999))])))
        guard case .reverted(_, let message) = missing else { Issue.record("expected a revert, got \(missing)"); return }
        #expect(message.contains("execution reverted"))
        try await rpc.shutdown()
    }

    @Test func batchIsOneHTTPRequest() async throws {
        let rpc = makeRPC(rpcConfiguration())
        _ = try await rpc.chainID()
        let before = rpc.httpRequestCount
        let calls = (0..<20).map { _ in EthCall(to: chain.contract("erc721"), data: ABI.call("balanceOf(address)", [.address(TestChain.freshAddress())])) }
        let results = try await rpc.calls(calls)
        #expect(results.count == 20)
        #expect(results.allSatisfy { $0.data == ABI.word(0) })
        #expect(rpc.httpRequestCount == before + 1)
        // mixed batch: a revert in the middle does not disturb the others
        let answers = try await rpc.batch([RPCRequest("eth_blockNumber"), RPCRequest("eth_call", [EthCall(to: chain.contract("erc721"), data: ABI.call("ownerOf(uint256)", [.uint(UInt256.max)])).json, "latest"]), RPCRequest("eth_chainId")])
        #expect(answers.count == 3)
        if case .error(let error) = answers[1] { #expect(error.isExecutionFailure) } else { Issue.record("expected a revert") }
        #expect(answers[2] == .result("0x7a69"))
        try await rpc.shutdown()
    }

    @Test func multicallReadsInOneCall() async throws {
        let rpc = makeRPC(rpcConfiguration(multicall: true))
        _ = try await rpc.chainID()
        let holder = TestChain.freshAddress()
        let id = TestChain.freshTokenID()
        try await chain.call("sg_mint721", [holder.json, .integer(id)])
        let before = rpc.httpRequestCount
        let calls = [
            EthCall(to: chain.contract("erc721"), data: ABI.call("balanceOf(address)", [.address(holder)])),
            EthCall(to: chain.contract("erc721"), data: ABI.call("ownerOf(uint256)", [.uint(UInt256(id))])),
            EthCall(to: chain.contract("erc721"), data: ABI.call("ownerOf(uint256)", [.uint(UInt256.max)])),
            EthCall(to: chain.contract("delegateRegistry"), data: ABI.call("getIncomingDelegations(address)", [.address(holder)]), direct: true),
        ]
        let (results, extra) = try await rpc.read(calls, extra: [RPCRequest("eth_blockNumber")])
        #expect(rpc.httpRequestCount == before + 1)
        #expect(results[0].data == ABI.word(1))
        #expect(results[1].data == ABI.encode([.address(holder)]))
        if case .reverted = results[2] {} else { Issue.record("expected the failed call as reverted, got \(results[2])") }
        #expect(try results[3].data.map { try ABI.decode(.array(ContractABI.delegationType), from: $0) } == .array([]))
        if case .result(let value) = extra[0] { #expect(value.uint64 != nil) } else { Issue.record("no block number") }
        try await rpc.shutdown()
    }

    @Test func logs() async throws {
        let rpc = makeRPC(rpcConfiguration())
        let holder = TestChain.freshAddress()
        let id = TestChain.freshTokenID()
        let receipt = try await chain.call("sg_mint721", [holder.json, .integer(id)])
        let block = try #require(receipt["blockNumber"]?.uint64)
        let logs = try await rpc.logs(LogFilter(
            fromBlock: .number(block), toBlock: .number(block), addresses: [chain.contract("erc721")],
            topics: [[ContractABI.transferTopic], [ABI.word(0)], nil]
        ))
        let mine = logs.filter { $0.topics.count == 4 && $0.topics[3] == UInt256(id).bytes }
        #expect(mine.count == 1)
        #expect(mine.first?.topics[2] == ABI.encode([.address(holder)]))
        #expect(mine.first?.blockNumber == block)
        try await rpc.shutdown()
    }

    @Test func failsOverFromADeadEndpoint() async throws {
        let dead = "http://127.0.0.1:\(deadPort())"
        var configuration = rpcConfiguration(endpoints: [dead, chain.rpcURL], timeout: .seconds(30))
        // Long enough that a loaded machine cannot outlast it between the two calls.
        configuration.endpointCooldown = .seconds(120)
        let rpc = makeRPC(configuration)
        #expect(try await rpc.blockNumber() > 0)
        // the dead endpoint cools down: the next call goes straight to the live one
        let before = rpc.httpRequestCount
        _ = try await rpc.blockNumber()
        #expect(rpc.httpRequestCount == before + 1)
        try await rpc.shutdown()
    }

    @Test func refusesAnEndpointOnAnotherChain() async throws {
        var configuration = rpcConfiguration()
        configuration.chainID = 1
        let rpc = makeRPC(configuration)
        await #expect(throws: EthereumRPCError.unavailable("\(EthereumRPC.label(chain.rpcURL)): eth_chainId is 31337, expected 1")) {
            try await rpc.blockNumber()
        }
        try await rpc.shutdown()
    }

    @Test func endpointsThatDoNotAnswerAreUnavailableAfterTimeouts() async throws {
        let hole = BlackHole()
        let rpc = makeRPC(rpcConfiguration(endpoints: ["http://127.0.0.1:\(hole.port)", "http://127.0.0.1:\(deadPort())"], timeout: .milliseconds(300)))
        let started = ContinuousClock.now
        do {
            _ = try await rpc.blockNumber()
            Issue.record("expected unavailable")
        } catch {
            guard case .unavailable(let reason) = error else { Issue.record("expected unavailable, got \(error)"); return }
            #expect(reason.contains("timed out after 0.3 seconds"))
        }
        // Generous: the machine may be busy with a build; what matters is that it is not unbounded.
        #expect(ContinuousClock.now - started < .seconds(60))
        try await rpc.shutdown()
    }
}
