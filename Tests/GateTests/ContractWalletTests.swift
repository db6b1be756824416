import Foundation
import Jobs
import Testing
@testable import Gate

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
        let redis = try TestRedis()
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
        await client.shutdown()
    }
}
