import Testing
@testable import Gate
import Ethereum

@Suite struct ABITests {
    /// Selectors and topics as REFERENCES.md and fixtures/chain/README.md list them.
    @Test(arguments: [
        ("ownerOf(uint256)", "0x6352211e"),
        ("balanceOf(address)", "0x70a08231"),
        ("balanceOf(address,uint256)", "0x00fdd58e"),
        ("balanceOfBatch(address[],uint256[])", "0x4e1273f4"),
        ("userOf(uint256)", "0xc2f1f14a"),
        ("userExpires(uint256)", "0x8fc88c48"),
        ("supportsInterface(bytes4)", "0x01ffc9a7"),
        ("isValidSignature(bytes32,bytes)", "0x1626ba7e"),
        ("aggregate3((address,bool,bytes)[])", "0x82ad56cb"),
        ("aggregate((address,bytes)[])", "0x252dba42"),
        ("getBlockNumber()", "0x42cbb15c"),
        ("checkDelegateForAll(address,address,bytes32)", "0xe839bd53"),
        ("checkDelegateForContract(address,address,address,bytes32)", "0x8988eea9"),
        ("checkDelegateForERC721(address,address,address,uint256,bytes32)", "0xb9f36874"),
        ("checkDelegateForERC1155(address,address,address,uint256,bytes32)", "0xb8705875"),
        ("delegateAll(address,bytes32,bool)", "0x30ff3140"),
        ("setUser(uint256,address,uint64)", "0xe030565e"),
    ])
    func selectors(signature: String, expected: String) {
        #expect(EthereumHex.encode(ABI.selector(signature)) == expected)
    }

    @Test func eventTopics() {
        #expect(EthereumHex.encode(ContractABI.transferTopic) == "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
        #expect(EthereumHex.encode(ContractABI.transferSingleTopic) == "0xc3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62")
        #expect(EthereumHex.encode(ContractABI.transferBatchTopic) == "0x4a39dc06d4c0dbc64b70af90fd698a233a518aa5d07e595d983b8c0526c8f7fb")
        #expect(EthereumHex.encode(ContractABI.updateUserTopic) == "0x4e06b4e7000e659094299b3533b47b6aa8ad048e95e872d23d1f4ee55af89cfe")
    }

    /// The Solidity documentation's example: `f(uint256,uint32[],bytes10,bytes)` shape, here with
    /// the types this encoder has: `(uint256, uint256[], bytes32, bytes)`.
    @Test func encodesStaticAndDynamicArguments() {
        let encoded = ABI.encode([
            .uint(UInt256(0x123)),
            .array([.uint(UInt256(0x456)), .uint(UInt256(0x789))]),
            .bytes32(Array("1234567890".utf8)),
            .bytes(Array("Hello, world!".utf8)),
        ])
        let expected = """
        0000000000000000000000000000000000000000000000000000000000000123\
        0000000000000000000000000000000000000000000000000000000000000080\
        3132333435363738393000000000000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000000000000e0\
        0000000000000000000000000000000000000000000000000000000000000002\
        0000000000000000000000000000000000000000000000000000000000000456\
        0000000000000000000000000000000000000000000000000000000000000789\
        000000000000000000000000000000000000000000000000000000000000000d\
        48656c6c6f2c20776f726c642100000000000000000000000000000000000000
        """
        #expect(EthereumHex.encode(encoded) == "0x" + expected)
        let decoded = try? ABI.decode([.uint, .array(.uint), .bytes32, .bytes], from: encoded)
        #expect(decoded?[1].array?.count == 2)
        #expect(decoded?[3].bytes.map { String(decoding: $0, as: UTF8.self) } == "Hello, world!")
    }

    /// aggregate3's argument: a dynamic array of dynamic tuples, cross-checked against eth-abi
    /// (Python) `encode(['(address,bool,bytes)[]'], [[(a, True, b'\x01\x02')]])`.
    @Test func encodesAggregate3() throws {
        let target = try EthereumAddress(hex: "0x5FbDB2315678afecb367f032d93F642f64180aa3")
        let data = EthereumRPC.aggregate3Data([EthCall(to: target, data: [1, 2])])
        let expected = "0x82ad56cb"
            + "0000000000000000000000000000000000000000000000000000000000000020"
            + "0000000000000000000000000000000000000000000000000000000000000001"
            + "0000000000000000000000000000000000000000000000000000000000000020"
            + "0000000000000000000000005fbdb2315678afecb367f032d93f642f64180aa3"
            + "0000000000000000000000000000000000000000000000000000000000000001"
            + "0000000000000000000000000000000000000000000000000000000000000060"
            + "0000000000000000000000000000000000000000000000000000000000000002"
            + "0102000000000000000000000000000000000000000000000000000000000000"
        #expect(EthereumHex.encode(data) == expected)
        // and it decodes back
        let decoded = try ABI.decode(.array(.tuple([.address, .bool, .bytes])), from: Array(data.dropFirst(4)))
        #expect(decoded == .array([.tuple([.address(target), .bool(true), .bytes([1, 2])])]))
    }

    @Test func refusesTruncatedAndHostileData() {
        #expect(throws: ABIError.self) { try ABI.decode(.uint, from: [0, 1]) }
        // an array claiming 2^32 elements
        let hostile = ABI.word(32) + [UInt8](repeating: 0, count: 28) + [0xff, 0xff, 0xff, 0xff]
        #expect(throws: ABIError.self) { try ABI.decode(.array(.uint), from: hostile) }
        // an address with dirty high bytes
        #expect(throws: ABIError.self) { try ABI.decode(.address, from: [UInt8](repeating: 0xff, count: 32)) }
        // bytes whose length runs past the end
        #expect(throws: ABIError.self) { try ABI.decode(.bytes, from: ABI.word(32) + ABI.word(64) + [1, 2, 3]) }
    }
}
