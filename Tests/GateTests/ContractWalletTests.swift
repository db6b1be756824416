import Foundation
import TestSupport
import Testing
@testable import Gate
import Ethereum

/// Sign-in by an EIP-1271 contract wallet of the local chain, through SIWEVerifier.
@Suite struct ContractWalletTests {
    let chain = TestChain.shared

    func verifier(_ checker: ContractWalletChecker, nonces: RedisNonceStore) -> SIWEVerifier {
        SIWEVerifier(
            configuration: SIWEVerifierConfiguration(domain: "stream.example.com", uri: .exact("https://stream.example.com/login"), chainIDs: [chain.chainID]),
            nonces: nonces, contractChecker: checker
        )
    }

    func message(_ address: EthereumAddress, nonces: RedisNonceStore) async throws -> String {
        SIWEMessage(
            domain: "stream.example.com", address: address, statement: "Sign in to watch.",
            uri: "https://stream.example.com/login", chainID: chain.chainID, nonce: try await nonces.issue(),
            issuedAt: RFC3339Timestamp(Date().addingTimeInterval(-5))
        ).text
    }

    func key(of address: EthereumAddress) throws -> [UInt8] {
        try #require(chain.accounts.first { $0.address == address }).privateKey
    }

    @Test func walletSignatureAcceptedOthersRefused() async throws {
        try await withRedis { redis in
            let client = redis.client()
            let nonces = RedisNonceStore(client: client)
            let rpc = makeRPC(rpcConfiguration(multicall: true))
            let checker = ContractWalletChecker(rpcs: [rpc])
            let verifier = verifier(checker, nonces: nonces)
            let wallet = chain.contract("wallet1271")
            let owner = try #require(chain.walletOwner)

            let text = try await message(wallet, nonces: nonces)
            let signature = try Secp256k1Signer.sign(hash: EIP191.personalMessageHash(text), privateKey: try key(of: owner))
            let verification = try await verifier.verify(message: text, signature: signature)
            #expect(verification.method == .contract)
            #expect(verification.address == wallet)

            // Signed by another account of the chain: the wallet says no.
            let other = chain.accounts[2]
            let forged = try await message(wallet, nonces: nonces)
            let refused = await #expect(throws: SIWEVerificationError.self) {
                try await verifier.verify(message: forged, signature: try Secp256k1Signer.sign(hash: EIP191.personalMessageHash(forged), privateKey: other.privateKey))
            }
            #expect(refused?.reason == "bad_signature")

            // An EIP-6492 wrapper around the owner's signature, for a wallet already deployed.
            let wrappedText = try await message(wallet, nonces: nonces)
            let inner = try Secp256k1Signer.sign(hash: EIP191.personalMessageHash(wrappedText), privateKey: try key(of: owner))
            let wrapped = ABI.encode([.address(chain.contract("multicall3")), .bytes([]), .bytes(inner)]) + ContractWalletChecker.erc6492Suffix
            #expect(try await verifier.verify(message: wrappedText, signature: wrapped).method == .contract)

            // No code at the address: no opinion.
            #expect(try await checker.isValidSignature(address: TestChain.freshAddress(), hash: [UInt8](repeating: 1, count: 32), signature: inner, chainID: chain.chainID) == nil)
            try await rpc.shutdown()
        }
    }

    /// A contract account's check runs attacker-chosen calldata on a node: no message may cause one
    /// before its nonce is found unspent. The checker's requests are counted where they leave for
    /// the real chain (``EthereumRPC/httpRequestCount``), and a valid sign-in shows the count moves.
    @Test func contractWalletCheckWaitsForNonce() async throws {
        try await withRedis { redis in
            let client = redis.client()
            let nonces = RedisNonceStore(client: client)
            let rpc = makeRPC(rpcConfiguration(multicall: true))
            let verifier = verifier(ContractWalletChecker(rpcs: [rpc]), nonces: nonces)
            let wallet = chain.contract("wallet1271")
            let ownerKey = try key(of: try #require(chain.walletOwner))
            func signed(_ text: String) throws -> [UInt8] { try Secp256k1Signer.sign(hash: EIP191.personalMessageHash(text), privateKey: ownerKey) }
            func message(nonce: String, domain: String = "stream.example.com") -> String {
                SIWEMessage(
                    domain: domain, address: wallet, uri: "https://stream.example.com/login", chainID: chain.chainID, nonce: nonce,
                    issuedAt: RFC3339Timestamp(Date().addingTimeInterval(-5))
                ).text
            }
            func reason(_ text: String, _ signature: [UInt8]) async -> String? {
                do {
                    _ = try await verifier.verify(message: text, signature: signature)
                    return nil
                } catch {
                    return error.reason
                }
            }

            // An unknown nonce, a garbage "signature" and one the wallet would accept: no request.
            let unknown = message(nonce: "NeverIssuedHere123")
            #expect(await reason(unknown, [UInt8](repeating: 0xab, count: 300)) == "nonce_unknown")
            #expect(await reason(unknown, try signed(unknown)) == "nonce_unknown")
            // An EIP-6492 wrapper naming a factory and its calldata: still nothing is called.
            let factoryCall: [ABI.Value] = [.address(chain.contract("multicall3")), .bytes([1, 2, 3]), .bytes(try signed(unknown))]
            let wrapped = ABI.encode(factoryCall) + ContractWalletChecker.erc6492Suffix
            #expect(await reason(unknown, wrapped) == "nonce_unknown")
            // Another site's message, with a live nonce: refused before the nonce, and before the chain.
            let elsewhere = message(nonce: try await nonces.issue(), domain: "evil.example")
            #expect(await reason(elsewhere, try signed(elsewhere)) == "wrong_domain")
            #expect(rpc.httpRequestCount == 0, "\(rpc.httpRequestCount) requests reached the chain")

            // With a live nonce the wallet is asked, once: the counter does see the chain.
            let genuine = message(nonce: try await nonces.issue())
            #expect(await reason(genuine, try signed(genuine)) == nil)
            let asked = rpc.httpRequestCount
            #expect(asked > 0)
            // The same message again: a replay, refused without asking the chain again.
            #expect(await reason(genuine, try signed(genuine)) == "nonce_replayed")
            #expect(rpc.httpRequestCount == asked)
            try await rpc.shutdown()
        }
    }

    /// `isValidSignature` accepts only when it returns the magic value ABI-encoded as `bytes4`:
    /// 32 bytes, `1626ba7e` then 28 zeros. Anything that merely starts with the selector (a
    /// fallback echoing its calldata, junk after it) refuses.
    static let magicCases: [(name: String, result: CallResult, accepted: Bool)] = [
        ("the ABI-encoded magic value", .success(ContractWalletChecker.magicValue + [UInt8](repeating: 0, count: 28)), true),
        ("the four bytes alone", .success(ContractWalletChecker.magicValue), false),
        ("31 bytes", .success(ContractWalletChecker.magicValue + [UInt8](repeating: 0, count: 27)), false),
        ("33 bytes", .success(ContractWalletChecker.magicValue + [UInt8](repeating: 0, count: 29)), false),
        ("a second word after it", .success(ContractWalletChecker.magicValue + [UInt8](repeating: 0, count: 60)), false),
        ("junk in the padding", .success(ContractWalletChecker.magicValue + [UInt8](repeating: 0, count: 27) + [1]), false),
        ("the calldata echoed back", .success(ContractWalletChecker.isValidSignatureData(hash: [UInt8](repeating: 7, count: 32), signature: [1])), false),
        ("right-aligned like a uint", .success([UInt8](repeating: 0, count: 28) + ContractWalletChecker.magicValue), false),
        ("another value", .success([0xff, 0xff, 0xff, 0xff] + [UInt8](repeating: 0, count: 28)), false),
        ("nothing", .success([]), false),
        ("a revert", .reverted(data: [], message: "execution reverted"), false),
    ]

    @Test(arguments: 0..<magicCases.count)
    func eip1271MagicNeedsAll32Bytes(_ index: Int) {
        let (name, result, accepted) = Self.magicCases[index]
        #expect(ContractWalletChecker.accepted(result) == accepted, "\(name)")
    }
}
