import Testing
@testable import Gate
import Ethereum

/// Expected digests computed with pycryptodome's `Crypto.Hash.keccak` (digest_bits=256).
@Suite("Keccak-256")
struct KeccakTests {
    /// `count` bytes `i % 251`: crosses block boundaries without repeating with the rate.
    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8($0 % 251) } }

    @Test("known digests", arguments: [
        ([UInt8](), "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
        (Array("abc".utf8), "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
        (Array("The quick brown fox jumps over the lazy dog".utf8), "0x4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15"),
        ((0..<200).map { UInt8(($0 * 7 + 3) % 256) }, "0x66d2cdf3ab4c5bd3c75add9b60b14ac5b7789534fa2da3f348853b847359a3a0"),
        (pattern(135), "0xcbdfd9dee5faad3818d6b06f95a219fd290b0e1706f6a82e5a595b9ce9faca62"),
        (pattern(136), "0x7ce759f1ab7f9ce437719970c26b0a66ff11fe3e38e17df89cf5d29c7d7f807e"),
        (pattern(137), "0xac73d4fae68b8453f764007c1a20ce95994187861f0c3227a3a8e99a73a3b1db"),
        (pattern(272), "0x8e2476e65823b24d96ebe239f2c1534cdf763e689e2410c3b1cb0c74e6177bfc"),
        (pattern(1000), "0xaf692982e84a5a9688359025660a7857cd28ee7c8d867cfa1677baf2e6d1f63b"),
    ])
    func vectors(_ input: [UInt8], _ expected: String) {
        #expect(EthereumHex.encode(Keccak256.hash(input)) == expected, "\(input.count) bytes")
    }

    @Test("pieces of any size give the one-shot digest", arguments: [1, 7, 64, 135, 136, 137, 300])
    func incremental(chunk: Int) {
        let input = Self.pattern(1000)
        var hasher = Keccak256()
        var start = 0
        while start < input.count {
            hasher.update(input[start..<min(start + chunk, input.count)])
            start += chunk
        }
        #expect(EthereumHex.encode(hasher.finalize()) == "0xaf692982e84a5a9688359025660a7857cd28ee7c8d867cfa1677baf2e6d1f63b")
    }

    @Test("a sequence without contiguous storage is hashed byte by byte to the same digest")
    func nonContiguous() {
        let lazy = (0..<1000).lazy.map { UInt8($0 % 251) }
        #expect(EthereumHex.encode(Keccak256.hash(lazy)) == "0xaf692982e84a5a9688359025660a7857cd28ee7c8d867cfa1677baf2e6d1f63b")
    }

    @Test("finalize leaves the hasher usable for a longer message")
    func finalizeIsNotDestructive() {
        var hasher = Keccak256()
        hasher.update("ab".utf8)
        #expect(hasher.finalize() != Keccak256.hash("abc".utf8))
        hasher.update("c".utf8)
        #expect(EthereumHex.encode(hasher.finalize()) == "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
    }
}
