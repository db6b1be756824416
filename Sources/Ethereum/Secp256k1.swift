import CSecp256k1

/// Public-key recovery from Ethereum ECDSA signatures (`ecrecover`), through libsecp256k1.
///
/// Signatures are `r ‖ s ‖ v`, 65 bytes, with `v` the recovery id as 0/1 or 27/28. Like Ethereum
/// since EIP-2, a signature whose `s` is in the upper half of the curve order is refused: for every
/// valid signature `(r, s)` the pair `(r, n − s)` is valid too, and accepting both would let anyone
/// turn one signature into a second, different one.
public enum Secp256k1Recovery {
    /// The uncompressed public key (`X ‖ Y`, 64 bytes) that produced `signature` over `hash`.
    public static func recoverPublicKey(hash: [UInt8], signature: [UInt8]) throws(SignatureError) -> [UInt8] {
        guard hash.count == 32 else { throw .hashLength(hash.count) }
        guard signature.count == 65 else { throw .signatureLength(signature.count) }
        let recoveryID: Int32
        switch signature[64] {
        case 0, 27: recoveryID = 0
        case 1, 28: recoveryID = 1
        default: throw .recoveryID(signature[64])
        }
        let r = signature[0..<32]
        let s = signature[32..<64]
        guard r.contains(where: { $0 != 0 }), s.contains(where: { $0 != 0 }) else { throw .zeroComponent }
        // Big-endian byte strings of equal length compare like the numbers they hold.
        guard !Secp256k1Context.halfOrder.lexicographicallyPrecedes(s) else { throw .highS }

        let context = Secp256k1Context.shared.pointer
        var recoverable = secp256k1_ecdsa_recoverable_signature()
        let parsed = signature.withUnsafeBufferPointer { bytes in
            secp256k1_ecdsa_recoverable_signature_parse_compact(context, &recoverable, bytes.baseAddress!, recoveryID)
        }
        guard parsed == 1 else { throw .componentOutOfRange }

        var publicKey = secp256k1_pubkey()
        let recovered = hash.withUnsafeBufferPointer { digest in
            secp256k1_ecdsa_recover(context, &publicKey, &recoverable, digest.baseAddress!)
        }
        guard recovered == 1 else { throw .unrecoverable }
        return Secp256k1Context.serialize(publicKey)
    }

    /// The address whose key produced `signature` over `hash`.
    public static func recoverAddress(hash: [UInt8], signature: [UInt8]) throws(SignatureError) -> EthereumAddress {
        let publicKey = try recoverPublicKey(hash: hash, signature: signature)
        // 64 bytes by construction.
        return try! EthereumAddress(publicKey: publicKey)
    }
}

/// A signature that cannot be recovered to a public key, and why.
public enum SignatureError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The hash is not 32 bytes.
    case hashLength(Int)
    /// The signature is not 65 bytes (`r ‖ s ‖ v`).
    case signatureLength(Int)
    /// `v` is not 0, 1, 27 or 28.
    case recoveryID(UInt8)
    /// `s` is above half the curve order (EIP-2).
    case highS
    /// `r` or `s` is zero.
    case zeroComponent
    /// `r` or `s` is not below the curve order.
    case componentOutOfRange
    /// No public key matches (r is not the x coordinate of a curve point).
    case unrecoverable

    public var description: String {
        switch self {
        case .hashLength(let count): "the signed hash is \(count) bytes, expected 32"
        case .signatureLength(let count): "the signature is \(count) bytes, expected 65 (r ‖ s ‖ v)"
        case .recoveryID(let v): "the signature's v is \(v), expected 0, 1, 27 or 28"
        case .highS: "the signature's s is in the upper half of the curve order (EIP-2 forbids it)"
        case .zeroComponent: "the signature's r or s is zero"
        case .componentOutOfRange: "the signature's r or s is not below the curve order"
        case .unrecoverable: "no public key can be recovered from the signature"
        }
    }
}

/// The one libsecp256k1 context of the process.
///
/// A context is only written by `secp256k1_context_randomize` (which signing would want and
/// recovery does not need, so it is never called) and freed by `secp256k1_context_destroy` (never
/// called: it lives as long as the process), so every thread may use it at once.
final class Secp256k1Context: @unchecked Sendable {
    static let shared = Secp256k1Context()

    /// n / 2 for the secp256k1 group order n, big-endian: the largest `s` EIP-2 accepts.
    static let halfOrder: [UInt8] = [
        0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
    ]

    let pointer: OpaquePointer

    private init() {
        guard let context = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE)) else {
            fatalError("secp256k1_context_create failed")
        }
        pointer = context
    }

    /// `X ‖ Y` of a public key.
    static func serialize(_ publicKey: secp256k1_pubkey) -> [UInt8] {
        var key = publicKey
        var output = [UInt8](repeating: 0, count: 65)
        var length = 65
        _ = secp256k1_ec_pubkey_serialize(shared.pointer, &output, &length, &key, UInt32(SECP256K1_EC_UNCOMPRESSED))
        return Array(output[1..<65])
    }
}

/// Signing with a raw private key: for tests and development tools that need an account to sign
/// in with, never on a serving path (the server only verifies).
package enum Secp256k1Signer {
    /// Signs `hash` deterministically (RFC 6979, as eth-account does): `r ‖ s ‖ v` with low `s` and
    /// `v` 27 or 28.
    package static func sign(hash: [UInt8], privateKey: [UInt8]) throws(SignatureError) -> [UInt8] {
        guard hash.count == 32 else { throw .hashLength(hash.count) }
        precondition(privateKey.count == 32, "a private key is 32 bytes")
        let context = Secp256k1Context.shared.pointer
        var signature = secp256k1_ecdsa_recoverable_signature()
        let signed = secp256k1_ecdsa_sign_recoverable(context, &signature, hash, privateKey, nil, nil)
        precondition(signed == 1, "invalid private key")
        var output = [UInt8](repeating: 0, count: 65)
        var recoveryID: Int32 = 0
        _ = secp256k1_ecdsa_recoverable_signature_serialize_compact(context, &output, &recoveryID, &signature)
        output[64] = UInt8(recoveryID) + 27
        return output
    }

    /// The address of a private key.
    package static func address(privateKey: [UInt8]) -> EthereumAddress {
        var publicKey = secp256k1_pubkey()
        let created = secp256k1_ec_pubkey_create(Secp256k1Context.shared.pointer, &publicKey, privateKey)
        precondition(created == 1, "invalid private key")
        return try! EthereumAddress(publicKey: Secp256k1Context.serialize(publicKey))
    }
}
