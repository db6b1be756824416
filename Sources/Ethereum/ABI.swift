/// The Solidity contract ABI, as far as the gate needs it: calls to token contracts, the delegate
/// registry, EIP-1271 wallets and Multicall3, and their answers.
///
/// Types: `uint<N>` (as ``UInt256``), `address`, `bool`, `bytes`, `bytes32`, tuples and dynamic
/// arrays of any of these. Decoding checks every offset and length against the data, so a hostile or
/// broken contract's answer is an error, never a crash or a huge allocation.
public enum ABI {
    /// An ABI type.
    public indirect enum ValueType: Sendable, Hashable {
        case uint
        case address
        case bool
        case bytes
        case bytes32
        case tuple([ValueType])
        case array(ValueType)

        /// Dynamic types are encoded at an offset in the tail; static ones in place.
        public var isDynamic: Bool {
            switch self {
            case .uint, .address, .bool, .bytes32: false
            case .bytes, .array: true
            case .tuple(let members): members.contains(where: \.isDynamic)
            }
        }

        /// Bytes a static type takes in place.
        var headSize: Int {
            switch self {
            case .tuple(let members) where !isDynamic: members.reduce(0) { $0 + $1.headSize }
            default: 32
            }
        }
    }

    /// An ABI value.
    public indirect enum Value: Sendable, Hashable {
        case uint(UInt256)
        case address(EthereumAddress)
        case bool(Bool)
        case bytes([UInt8])
        /// Exactly 32 bytes.
        case bytes32([UInt8])
        case tuple([Value])
        case array([Value])

        public var uint: UInt256? { if case .uint(let value) = self { value } else { nil } }
        public var address: EthereumAddress? { if case .address(let value) = self { value } else { nil } }
        public var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
        public var bytes: [UInt8]? {
            switch self {
            case .bytes(let value), .bytes32(let value): value
            default: nil
            }
        }
        public var tuple: [Value]? { if case .tuple(let value) = self { value } else { nil } }
        public var array: [Value]? { if case .array(let value) = self { value } else { nil } }

        var isDynamic: Bool {
            switch self {
            case .uint, .address, .bool, .bytes32: false
            case .bytes, .array: true
            case .tuple(let members): members.contains(where: \.isDynamic)
            }
        }
    }

    /// The 4-byte selector of a canonical function signature such as `balanceOf(address)`.
    public static func selector(_ signature: String) -> [UInt8] {
        Array(Keccak256.hash(Array(signature.utf8)).prefix(4))
    }

    /// The 32-byte topic of an event signature such as `Transfer(address,address,uint256)`.
    public static func eventTopic(_ signature: String) -> [UInt8] {
        Keccak256.hash(Array(signature.utf8))
    }

    /// Call data: the selector of `signature`, then `arguments` encoded as a tuple.
    public static func call(_ signature: String, _ arguments: [Value]) -> [UInt8] {
        selector(signature) + encode(arguments)
    }

    /// `values` encoded as the members of a tuple (function arguments, return values).
    public static func encode(_ values: [Value]) -> [UInt8] {
        let headSize = values.reduce(0) { $0 + ($1.isDynamic ? 32 : staticSize($1)) }
        var head: [UInt8] = []
        var tail: [UInt8] = []
        head.reserveCapacity(headSize)
        for value in values {
            if value.isDynamic {
                head += word(UInt64(headSize + tail.count))
                tail += encodeOne(value)
            } else {
                head += encodeOne(value)
            }
        }
        return head + tail
    }

    private static func staticSize(_ value: Value) -> Int {
        if case .tuple(let members) = value { return members.reduce(0) { $0 + staticSize($1) } }
        return 32
    }

    private static func encodeOne(_ value: Value) -> [UInt8] {
        switch value {
        case .uint(let number): return number.bytes
        case .address(let address): return [UInt8](repeating: 0, count: 12) + address.bytes
        case .bool(let flag): return word(flag ? 1 : 0)
        case .bytes32(let bytes): return Array(bytes.prefix(32)) + [UInt8](repeating: 0, count: max(0, 32 - bytes.count))
        case .bytes(let bytes):
            let padding = (32 - bytes.count % 32) % 32
            return word(UInt64(bytes.count)) + bytes + [UInt8](repeating: 0, count: padding)
        case .tuple(let members): return encode(members)
        case .array(let elements): return word(UInt64(elements.count)) + encode(elements)
        }
    }

    /// A uint256 word holding `value`.
    public static func word(_ value: UInt64) -> [UInt8] { UInt256(value).bytes }

    /// Decodes `data` as a tuple of `types` (a function's return values).
    public static func decode(_ types: [ValueType], from data: [UInt8]) throws(ABIError) -> [Value] {
        var reader = Reader(data: data)
        return try reader.tuple(types, at: 0)
    }

    /// Decodes one value of `type` (a function with one return value).
    public static func decode(_ type: ValueType, from data: [UInt8]) throws(ABIError) -> Value {
        try decode([type], from: data)[0]
    }

    private struct Reader {
        let data: [UInt8]
        /// Elements read so far, against answers that claim billions of elements.
        var budget = 100_000

        func word(at offset: Int) throws(ABIError) -> ArraySlice<UInt8> {
            guard offset >= 0, offset <= data.count - 32 else { throw ABIError("data ends before a word at byte \(offset) (\(data.count) bytes)") }
            return data[offset..<offset + 32]
        }

        func integer(at offset: Int) throws(ABIError) -> Int {
            let bytes = try word(at: offset)
            guard bytes.prefix(28).allSatisfy({ $0 == 0 }) else { throw ABIError("offset or length at byte \(offset) is too large") }
            let value = bytes.suffix(4).reduce(0) { $0 << 8 | Int($1) }
            guard value <= data.count else { throw ABIError("offset or length \(value) at byte \(offset) is past the end of the data (\(data.count) bytes)") }
            return value
        }

        mutating func tuple(_ types: [ValueType], at base: Int) throws(ABIError) -> [Value] {
            var values: [Value] = []
            var offset = base
            for type in types {
                if type.isDynamic {
                    let target = try integer(at: offset)
                    values.append(try value(type, at: base + target))
                    offset += 32
                } else {
                    values.append(try value(type, at: offset))
                    offset += type.headSize
                }
            }
            return values
        }

        mutating func value(_ type: ValueType, at offset: Int) throws(ABIError) -> Value {
            budget -= 1
            guard budget > 0 else { throw ABIError("too many values") }
            switch type {
            case .uint:
                return .uint(UInt256(uncheckedBytes: Array(try word(at: offset))))
            case .address:
                let bytes = try word(at: offset)
                guard bytes.prefix(12).allSatisfy({ $0 == 0 }) else { throw ABIError("address at byte \(offset) has nonzero high bytes") }
                return .address(try! EthereumAddress(bytes: Array(bytes.suffix(20))))
            case .bool:
                let bytes = try word(at: offset)
                guard bytes.prefix(31).allSatisfy({ $0 == 0 }), bytes.last! <= 1 else { throw ABIError("bool at byte \(offset) is neither 0 nor 1") }
                return .bool(bytes.last! == 1)
            case .bytes32:
                return .bytes32(Array(try word(at: offset)))
            case .bytes:
                let length = try integer(at: offset)
                guard offset + 32 + length <= data.count else { throw ABIError("bytes at byte \(offset) claim \(length) bytes past the end of the data") }
                return .bytes(Array(data[offset + 32..<offset + 32 + length]))
            case .tuple(let members):
                return .tuple(try tuple(members, at: offset))
            case .array(let element):
                let count = try integer(at: offset)
                guard count <= budget, count * (element.isDynamic ? 32 : element.headSize) <= data.count - offset - 32 else {
                    throw ABIError("array at byte \(offset) claims \(count) elements, more than the data holds")
                }
                return .array(try tuple(Array(repeating: element, count: count), at: offset + 32))
            }
        }
    }
}

/// ABI data that does not decode as the expected types.
public struct ABIError: Error, CustomStringConvertible, Sendable, Equatable {
    public let reason: String
    package init(_ reason: String) { self.reason = reason }
    public var description: String { "ABI: \(reason)" }
}

/// The calls and events the gate uses, by name.
public enum ContractABI {
    // ERC-721 / ERC-4907
    public static let ownerOf = ABI.selector("ownerOf(uint256)")
    public static let balanceOf = ABI.selector("balanceOf(address)")
    public static let userOf = ABI.selector("userOf(uint256)")
    public static let userExpires = ABI.selector("userExpires(uint256)")
    // ERC-1155
    public static let balanceOf1155 = ABI.selector("balanceOf(address,uint256)")
    public static let balanceOfBatch = ABI.selector("balanceOfBatch(address[],uint256[])")
    // ERC-165, EIP-1271
    public static let supportsInterface = ABI.selector("supportsInterface(bytes4)")
    public static let isValidSignature = ABI.selector("isValidSignature(bytes32,bytes)")
    // Multicall3
    public static let aggregate3 = ABI.selector("aggregate3((address,bool,bytes)[])")
    public static let getBlockNumber = ABI.selector("getBlockNumber()")
    public static let getCurrentBlockTimestamp = ABI.selector("getCurrentBlockTimestamp()")
    // delegate.xyz v2
    public static let checkDelegateForAll = ABI.selector("checkDelegateForAll(address,address,bytes32)")
    public static let checkDelegateForContract = ABI.selector("checkDelegateForContract(address,address,address,bytes32)")
    public static let checkDelegateForERC721 = ABI.selector("checkDelegateForERC721(address,address,address,uint256,bytes32)")
    public static let checkDelegateForERC1155 = ABI.selector("checkDelegateForERC1155(address,address,address,uint256,bytes32)")
    public static let getIncomingDelegations = ABI.selector("getIncomingDelegations(address)")
    /// v2's `Delegation` struct: `(uint8 type, address to, address from, bytes32 rights, address contract, uint256 tokenId, uint256 amount)`.
    public static let delegationType = ABI.ValueType.tuple([.uint, .address, .address, .bytes32, .address, .uint, .uint])

    // Events
    public static let transferTopic = ABI.eventTopic("Transfer(address,address,uint256)")
    public static let transferSingleTopic = ABI.eventTopic("TransferSingle(address,address,address,uint256,uint256)")
    public static let transferBatchTopic = ABI.eventTopic("TransferBatch(address,address,address,uint256[],uint256[])")
    public static let updateUserTopic = ABI.eventTopic("UpdateUser(uint256,address,uint64)")
    public static let delegateAllTopic = ABI.eventTopic("DelegateAll(address,address,bytes32,bool)")
    public static let delegateContractTopic = ABI.eventTopic("DelegateContract(address,address,address,bytes32,bool)")
    public static let delegateERC721Topic = ABI.eventTopic("DelegateERC721(address,address,address,uint256,bytes32,bool)")
    public static let delegateERC20Topic = ABI.eventTopic("DelegateERC20(address,address,address,bytes32,uint256)")
    public static let delegateERC1155Topic = ABI.eventTopic("DelegateERC1155(address,address,address,uint256,bytes32,uint256)")

    /// Every event that can change an ownership answer.
    public static let ownershipTopics = [
        transferTopic, transferSingleTopic, transferBatchTopic, updateUserTopic,
        delegateAllTopic, delegateContractTopic, delegateERC721Topic, delegateERC20Topic, delegateERC1155Topic,
    ]

    /// delegate.xyz v2's `DelegationType`.
    public enum DelegationKind: UInt8, Sendable {
        case none = 0, all, contract, erc721, erc20, erc1155
    }
}
