import AsyncHTTPClient
import Foundation
@testable import Gate
import LocalChain
import Ethereum

/// A clock the test sets and moves.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    init(_ start: Date) { current = start }

    var now: Date {
        lock.lock(); defer { lock.unlock() }
        return current
    }

    func advance(by seconds: TimeInterval) {
        lock.lock(); defer { lock.unlock() }
        current = current.addingTimeInterval(seconds)
    }

    var function: @Sendable () -> Date { { self.now } }
}

/// Test accounts. `alice` is eth-account's documented example key; the vectors signed with it in
/// these tests were produced by eth-account 0.14 (Python), not by this code.
enum Keys {
    static let alice = bytes("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    static let aliceAddress = try! EthereumAddress(hex: "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")
    static let bob = [UInt8](repeating: 0x11, count: 32)
    static let bobAddress = try! EthereumAddress(hex: "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A")
}

func bytes(_ hex: String) -> [UInt8] { try! EthereumHex.decode(hex) }

/// One local chain (fixtures/chain/chain.py) for the whole test process, started on first use.
/// Tests share it, so each uses its own token ids and fresh holder addresses.
enum TestChain {
    static let shared: LocalChainProcess = {
        do {
            let chain = try LocalChainProcess()
            atexit { TestChain.shared.stop() }
            return chain
        } catch {
            fatalError("\(error)")
        }
    }()

    /// A token id no other test uses.
    static func freshTokenID() -> UInt64 { tokenIDs.withLock { id in id += 1; return id } }
    private static let tokenIDs = LockedCounter(start: UInt64(Date().timeIntervalSince1970) % 1_000_000 * 1000)

    /// A random address nobody holds a key for.
    static func freshAddress() -> EthereumAddress {
        try! EthereumAddress(bytes: (0..<20).map { _ in UInt8.random(in: 0...255) })
    }

    /// A new funded account the chain can sign for (to delegate from).
    static func importedAccount(_ chain: LocalChainProcess = shared) async throws -> EthereumAddress {
        let key = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let answer = try await chain.call("sg_importAccount", [.string(EthereumHex.encode(key))])
        return try EthereumAddress(hex: answer["address"]!.string!)
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UInt64
    init(start: UInt64) { value = start }
    func withLock<T>(_ body: (inout UInt64) -> T) -> T {
        lock.lock(); defer { lock.unlock() }
        return body(&value)
    }
}

extension EthereumAddress {
    var json: JSONValue { .string(checksummed) }
}

/// An RPC client on the process-wide HTTP client: a test that throws before its `shutdown()` leaves
/// nothing behind that would stop the whole test process.
func makeRPC(_ configuration: EthereumRPCConfiguration) -> EthereumRPC {
    EthereumRPC(configuration: configuration, httpClient: HTTPClient.shared)
}

func rpcConfiguration(_ chain: LocalChainProcess = TestChain.shared, multicall: Bool = false, endpoints: [String]? = nil, timeout: Duration = .seconds(5)) -> EthereumRPCConfiguration {
    EthereumRPCConfiguration(
        chainID: chain.chainID, endpoints: endpoints ?? [chain.rpcURL], timeout: timeout,
        multicall3: multicall ? chain.contract("multicall3") : nil
    )
}
