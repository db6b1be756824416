import Ethereum

/// A block to read state at.
public enum BlockTag: Sendable, Hashable, CustomStringConvertible {
    case latest, safe, finalized, pending, earliest
    case number(UInt64)

    /// The JSON-RPC parameter: the tag's name, or the number in `0x` hex.
    public var json: JSONValue {
        switch self {
        case .latest: "latest"
        case .safe: "safe"
        case .finalized: "finalized"
        case .pending: "pending"
        case .earliest: "earliest"
        case .number(let number): .string("0x" + String(number, radix: 16))
        }
    }

    public var description: String {
        if case .number(let number) = self { return String(number) }
        return json.string!
    }
}

/// What an `eth_call` answered.
public enum CallResult: Sendable, Hashable {
    /// The call returned this data.
    case success([UInt8])
    /// The call reverted (or failed in the EVM): an answer, not a node failure.
    case reverted(data: [UInt8], message: String)

    public var data: [UInt8]? { if case .success(let data) = self { data } else { nil } }
}

/// An `eth_call` to make.
public struct EthCall: Sendable, Hashable {
    public var to: EthereumAddress
    public var data: [UInt8]
    /// Send as its own `eth_call` even when Multicall3 is configured (answers larger than
    /// Multicall3 passes through, such as `getIncomingDelegations`).
    public var direct: Bool

    public init(to: EthereumAddress, data: [UInt8], direct: Bool = false) {
        self.to = to
        self.data = data
        self.direct = direct
    }

    var json: JSONValue { ["to": .string(to.lowercasedHex), "data": .string(EthereumHex.encode(data))] }
}

/// An `eth_getLogs` filter.
public struct LogFilter: Sendable, Hashable {
    public var fromBlock: BlockTag
    public var toBlock: BlockTag
    public var addresses: [EthereumAddress]
    /// Per position: nil for any topic, else any of the listed topics.
    public var topics: [[[UInt8]]?]

    public init(fromBlock: BlockTag, toBlock: BlockTag, addresses: [EthereumAddress] = [], topics: [[[UInt8]]?] = []) {
        self.fromBlock = fromBlock
        self.toBlock = toBlock
        self.addresses = addresses
        self.topics = topics
    }

    var json: JSONValue {
        var object: [String: JSONValue] = ["fromBlock": fromBlock.json, "toBlock": toBlock.json]
        if !addresses.isEmpty { object["address"] = .array(addresses.map { .string($0.lowercasedHex) }) }
        if !topics.isEmpty {
            object["topics"] = .array(topics.map { position in
                position.map { .array($0.map { .string(EthereumHex.encode($0)) }) } ?? .null
            })
        }
        return .object(object)
    }
}

/// One log entry.
public struct EthereumLog: Sendable, Hashable {
    public var address: EthereumAddress
    public var topics: [[UInt8]]
    public var data: [UInt8]
    public var blockNumber: UInt64
    public var logIndex: UInt64
    public var transactionHash: String
    public var removed: Bool
}
