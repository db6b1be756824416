import Testing
@testable import Gate
import Ethereum

@Suite("EIP-55 addresses")
struct EthereumAddressTests {
    /// The examples of EIP-55's specification: each is its own checksummed form.
    @Test("the EIP's examples parse and print unchanged, under either rule", arguments: [
        "0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77", "0x27b1fdb04752bbc536007a920d24acb045561c26",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ])
    func eipExamples(_ text: String) throws {
        #expect(try EthereumAddress(hex: text).checksummed == text)
        #expect(try EthereumAddress(hex: text, checksum: .required).description == text)
        #expect(try EthereumAddress(hex: text.lowercased()).checksummed == text)
    }

    @Test("a single-case address is accepted as unchecksummed, unless a checksum is required")
    func singleCase() throws {
        let lower = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
        let upper = "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"
        #expect(try EthereumAddress(hex: lower).checksummed == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
        #expect(try EthereumAddress(hex: upper) == EthereumAddress(hex: lower))
        #expect(throws: EthereumAddressError.notChecksummed(expected: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")) {
            try EthereumAddress(hex: lower, checksum: .required)
        }
    }

    @Test("mixed case that is not the checksum is refused, naming the correct form")
    func wrongChecksum() {
        // One letter's case flipped in an EIP example.
        let error = #expect(throws: EthereumAddressError.self) { try EthereumAddress(hex: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD") }
        #expect(error == .badChecksum(expected: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"))
        #expect(error?.description.contains("bad checksum") == true)
    }

    @Test("text that is not an address says why", arguments: [
        ("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "does not start with 0x"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA", "38 hex digits"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00", "42 hex digits"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", "'g' at offset 41"),
    ])
    func invalid(_ text: String, _ reason: String) {
        let error = #expect(throws: EthereumAddressError.self) { try EthereumAddress(hex: text) }
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }

    @Test("the address of a public key is the tail of its Keccak-256 (eth-keys vector)")
    func fromPublicKey() throws {
        let publicKey = bytes("0x4e3b81af9c2234cad09d679ce6035ed1392347ce64ce405f5dcd36228a25de6e47fd35c4215d1edf53e6f83de344615ce719bdb0fd878f6ed76f06dd277956de")
        #expect(try EthereumAddress(publicKey: publicKey) == Keys.aliceAddress)
        #expect(try EthereumAddress(publicKey: [0x04] + publicKey) == Keys.aliceAddress)
        #expect(throws: EthereumAddressError.badPublicKey(33)) { try EthereumAddress(publicKey: Array(publicKey.prefix(33))) }
        #expect(throws: EthereumAddressError.wrongByteCount(19)) { try EthereumAddress(bytes: Array(repeating: 1, count: 19)) }
    }
}

@Suite("hex and EIP-191")
struct HexAndEIP191Tests {
    @Test("0x hex round trip and refusals")
    func hex() throws {
        #expect(EthereumHex.encode([0x00, 0xab, 0xff]) == "0x00abff")
        #expect(try EthereumHex.decode("0x00ABff") == [0x00, 0xab, 0xff])
        #expect(try EthereumHex.decode("0x") == [])
        #expect(throws: EthereumHexError.self) { try EthereumHex.decode("00ab") }
        #expect(throws: EthereumHexError.self) { try EthereumHex.decode("0xabc") }
        #expect(throws: EthereumHexError.self) { try EthereumHex.decode("0xzz") }
        #expect(throws: EthereumHexError.self) { try EthereumHex.decode("0xab", count: 2) }
    }

    /// Expected values from eth-account's `_hash_eip191_message(encode_defunct(text=…))`.
    @Test("personal_sign hashes", arguments: [
        ("Hello World", "0xa1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"),
        ("", "0x5f35dce98ba4fba25530a026ed80b2cecdaa31091ba4958b99b52ea1d068adad"),
        ("StreamGate", "0xe2b9816ce9028379d5174c0ec2627d7ea39c8abc380bb034cba63263cd0431e5"),
    ])
    func personalMessageHash(_ message: String, _ expected: String) {
        #expect(EthereumHex.encode(EIP191.personalMessageHash(message)) == expected)
    }
}

@Suite("secp256k1 recovery")
struct RecoveryTests {
    /// Signatures made by eth-account 0.14 `Account.sign_message(encode_defunct(text=message), key)`.
    static let vectors: [(message: String, signer: EthereumAddress, signature: String)] = [
        ("StreamGate", Keys.aliceAddress, "0xdd86622c083a895c38392a2481bbeaefefc4de045e75aa43096153cbb459386c191522b251bd30bd8e248baf506d193092c3a592626cc16aa6a9b9914cc1338f1b"),
        ("Some data", Keys.aliceAddress, "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c"),
        ("hello", Keys.aliceAddress, "0xa5d58782075bdf09490159d634d1aae66a8f6777c7247d2f233e9511cfd7c64c34f288cdbcea5370e4863fdbe9f4d86654c2ba1d86589e9ebb64494c649008591b"),
        ("gate", Keys.aliceAddress, "0xc76bca204f08b3a2e654af204e73f07c5a71b1c8f1f1206f1e7475933a2eecdb39d0e88c7432539211534f38e0460fab559f530ade6c039b062f214039254c0d1c"),
        ("StreamGate", Keys.bobAddress, "0x2322813723b228662ef55d0bcf706777c17eb8e71ba2c740449721ff73db7aeb4716f0246bc567ecc21ba2726c767edad84adf70694e9df6e06e34a97a58e1181c"),
        ("Some data", Keys.bobAddress, "0xd93685ffb421d65204607b24f2d860c64e3b0b84b3fb4b23e39bc03ef5ddb12e7cf265a4a0df83d89ec781ae735e44454cda04637e1f700b2243cf2e8abc6d0e1b"),
        ("hello", Keys.bobAddress, "0x9208d5f86a1f5d9c1908dbb42969925675ceb388616fc5b186c248e4967a03e02e9d28a1adcb8cce60ebcef9756dee20522a2987afea3055f4edd8380d425f891b"),
        ("gate", Keys.bobAddress, "0xe590fc9b0c5fb354aed1ef0a1fb4968527046a0341ecd83d3db7fa850a51aca00f04a93caff9bb5d0e15de066d10150518f4a606c420c7deaf8cbbf8960f60961c"),
    ]

    @Test("eth-account signatures recover to their signer, with v as 27/28 and as 0/1", arguments: 0..<8)
    func recovers(_ index: Int) throws {
        let vector = Self.vectors[index]
        let hash = EIP191.personalMessageHash(vector.message)
        let signature = bytes(vector.signature)
        #expect([27, 28].contains(signature[64]))
        #expect(try Secp256k1Recovery.recoverAddress(hash: hash, signature: signature) == vector.signer)
        var zeroBased = signature
        zeroBased[64] -= 27
        #expect(try Secp256k1Recovery.recoverAddress(hash: hash, signature: zeroBased) == vector.signer)
        // Another message's hash gives some other key.
        let other = EIP191.personalMessageHash(vector.message + ".")
        #expect(try Secp256k1Recovery.recoverAddress(hash: other, signature: signature) != vector.signer)
    }

    @Test("the vectors include both recovery ids")
    func bothRecoveryIDs() {
        #expect(Set(Self.vectors.map { bytes($0.signature)[64] }) == [27, 28])
    }

    @Test("our signer matches eth-account's deterministic (RFC 6979) signatures")
    func signerMatchesEthAccount() throws {
        for vector in Self.vectors {
            let key = vector.signer == Keys.aliceAddress ? Keys.alice : Keys.bob
            #expect(try Secp256k1Signer.sign(hash: EIP191.personalMessageHash(vector.message), privateKey: key) == bytes(vector.signature))
        }
        #expect(Secp256k1Signer.address(privateKey: Keys.alice) == Keys.aliceAddress)
        #expect(Secp256k1Signer.address(privateKey: Keys.bob) == Keys.bobAddress)
    }

    @Test("high s is refused (EIP-2), although it would recover the same key")
    func highS() {
        // The first vector with s replaced by n − s and v flipped: eth-keys' native backend recovers
        // 0x2c7536E3…, Alice, from it.
        let malleated = bytes("0xdd86622c083a895c38392a2481bbeaefefc4de045e75aa43096153cbb459386ce6eadd4dae42cf4271db7450af92e6ce27eb37544cdbded11928a4fb83750db21c")
        #expect(throws: SignatureError.highS) {
            try Secp256k1Recovery.recoverAddress(hash: EIP191.personalMessageHash("StreamGate"), signature: malleated)
        }
    }

    @Test("malformed signatures and hashes are refused with the reason")
    func malformed() {
        let hash = EIP191.personalMessageHash("StreamGate")
        let good = bytes(Self.vectors[0].signature)
        #expect(throws: SignatureError.signatureLength(64)) { try Secp256k1Recovery.recoverAddress(hash: hash, signature: Array(good.prefix(64))) }
        #expect(throws: SignatureError.signatureLength(66)) { try Secp256k1Recovery.recoverAddress(hash: hash, signature: good + [0]) }
        #expect(throws: SignatureError.hashLength(31)) { try Secp256k1Recovery.recoverAddress(hash: Array(hash.prefix(31)), signature: good) }
        for v: UInt8 in [2, 26, 29, 37] {
            var signature = good
            signature[64] = v
            #expect(throws: SignatureError.recoveryID(v)) { try Secp256k1Recovery.recoverAddress(hash: hash, signature: signature) }
        }
        var zeroR = good
        zeroR.replaceSubrange(0..<32, with: [UInt8](repeating: 0, count: 32))
        #expect(throws: SignatureError.zeroComponent) { try Secp256k1Recovery.recoverAddress(hash: hash, signature: zeroR) }
        var hugeR = good
        hugeR.replaceSubrange(0..<32, with: [UInt8](repeating: 0xff, count: 32))
        #expect(throws: SignatureError.componentOutOfRange) { try Secp256k1Recovery.recoverAddress(hash: hash, signature: hugeR) }
    }

    @Test("recovery from many tasks at once uses the shared context safely")
    func concurrent() async throws {
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<64 {
                group.addTask {
                    let vector = Self.vectors[index % Self.vectors.count]
                    let signer = try? Secp256k1Recovery.recoverAddress(hash: EIP191.personalMessageHash(vector.message), signature: bytes(vector.signature))
                    return signer == vector.signer
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 64 && results.allSatisfy { $0 })
    }
}
