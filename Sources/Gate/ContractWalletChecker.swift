import Ethereum
/// Signatures of contract accounts, for ``SIWEVerifier``: EIP-6492 wrapped signatures, then
/// EIP-1271 `isValidSignature(bytes32,bytes)` when the address has code.
///
/// - EIP-1271: `eth_getCode` and the `isValidSignature` call travel in one JSON-RPC batch; the
///   signature is valid when the call returns the magic value `0x1626ba7e` ABI-encoded as a
///   `bytes4`: exactly 32 bytes, the four of the value then 28 zeros. A revert or any other
///   answer (shorter, longer, other padding) is `false`; no code is `nil` (no opinion: the verifier then refuses, since ecrecover
///   already failed).
/// - EIP-6492 (a signature ending in 32 bytes of `0x6492…`): unwrapped to `(factory,
///   factoryCalldata, signature)`. A deployed wallet is asked with the inner signature. A wallet
///   not deployed yet is verified by running, in one `eth_call` through Multicall3's `aggregate3`,
///   the factory call (which deploys it in the call's scratch state) and then `isValidSignature`
///   — so this needs Multicall3 on the chain; without it the sign-in fails as unavailable. This is
///   not ERC-6492's reference "deployless" validator (no contract bytecode is shipped here), and
///   it does not implement the "prepare" step for wallets that need a transaction after
///   deployment.
public struct ContractWalletChecker: ContractSignatureChecker {
    /// The EIP-1271 magic value: `isValidSignature`'s selector.
    public static let magicValue: [UInt8] = [0x16, 0x26, 0xba, 0x7e]
    /// What `isValidSignature` returns when it accepts: the magic value ABI-encoded as `bytes4`.
    public static let acceptedReturn: [UInt8] = magicValue + [UInt8](repeating: 0, count: 28)
    /// The suffix of EIP-6492 wrapped signatures.
    public static let erc6492Suffix: [UInt8] = Array(repeating: [0x64, 0x92], count: 16).flatMap { $0 }

    private let rpcs: [UInt64: EthereumRPC]
    /// The block state is read at.
    public let block: BlockTag

    public init(rpcs: [EthereumRPC], block: BlockTag = .latest) {
        var byChain: [UInt64: EthereumRPC] = [:]
        for rpc in rpcs { byChain[rpc.configuration.chainID] = rpc }
        self.rpcs = byChain
        self.block = block
    }

    public func isValidSignature(address: EthereumAddress, hash: [UInt8], signature: [UInt8], chainID: UInt64) async throws -> Bool? {
        guard let rpc = rpcs[chainID] else { throw OwnershipError.unsupportedChain(chainID) }
        if signature.count >= 32, Array(signature.suffix(32)) == Self.erc6492Suffix {
            return try await erc6492(rpc: rpc, address: address, hash: hash, wrapped: Array(signature.dropLast(32)))
        }
        let call = EthCall(to: address, data: Self.isValidSignatureData(hash: hash, signature: signature))
        let answers = try await rpc.batch([
            RPCRequest("eth_getCode", [.string(address.lowercasedHex), block.json]),
            RPCRequest("eth_call", [call.json, block.json]),
        ])
        guard case .result(let codeValue) = answers[0], let codeText = codeValue.string, let code = try? EthereumHex.decode(codeText) else {
            throw EthereumRPCError.badResponse("eth_getCode answered \(answers[0])")
        }
        guard !code.isEmpty else { return nil }
        return Self.accepted(try EthereumRPC.callResult(answers[1]))
    }

    private func erc6492(rpc: EthereumRPC, address: EthereumAddress, hash: [UInt8], wrapped: [UInt8]) async throws -> Bool? {
        let parts = try ABI.decode([.address, .bytes, .bytes], from: wrapped)
        guard let factory = parts[0].address, let factoryCalldata = parts[1].bytes, let inner = parts[2].bytes else {
            throw ABIError("EIP-6492 wrapper is not (address, bytes, bytes)")
        }
        let code = try await rpc.code(at: address, block: block)
        let check = EthCall(to: address, data: Self.isValidSignatureData(hash: hash, signature: inner))
        if !code.isEmpty { return Self.accepted(try await rpc.call(check, block: block)) }
        guard let multicall = rpc.configuration.multicall3 else {
            throw EthereumRPCError.unavailable("EIP-6492 signature of an undeployed wallet needs Multicall3 on chain \(rpc.configuration.chainID)")
        }
        let deployAndCheck = EthCall(to: multicall, data: EthereumRPC.aggregate3Data([EthCall(to: factory, data: factoryCalldata), check]))
        guard case .success(let data) = try await rpc.call(deployAndCheck, block: block),
            let results = try? ABI.decode(.array(.tuple([.bool, .bytes])), from: data).array, results.count == 2,
            let members = results[1].tuple, members[0].bool == true, let returned = members[1].bytes
        else { return false }
        return Self.accepted(.success(returned))
    }

    static func isValidSignatureData(hash: [UInt8], signature: [UInt8]) -> [UInt8] {
        ABI.call("isValidSignature(bytes32,bytes)", [.bytes32(hash), .bytes(signature)])
    }

    /// Whether a call's result is the ABI-encoded magic value and nothing else: a fallback function
    /// that echoes its calldata, or a contract returning `0x1626ba7e…` followed by junk, also
    /// starts with the selector and must not sign anyone in.
    static func accepted(_ result: CallResult) -> Bool {
        guard case .success(let data) = result else { return false }
        return data == acceptedReturn
    }
}
