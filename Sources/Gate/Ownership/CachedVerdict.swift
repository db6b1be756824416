import Foundation
import Ethereum

/// A cached answer and what it depends on.
struct CachedVerdict: Sendable, Hashable {
    var granted: Bool
    var reason: String
    var block: UInt64
    var dependencies: [EthereumAddress]
    var tokens: [String]
    var rentalExpiry: UInt64?

    var json: [UInt8] {
        var object: [String: JSONValue] = [
            "g": .bool(granted), "r": .string(reason), "b": .integer(block),
            "d": .array(dependencies.map { .string($0.lowercasedHex) }), "t": .array(tokens.map { .string($0) }),
        ]
        if let rentalExpiry { object["x"] = .integer(rentalExpiry) }
        return (try? Array(JSONEncoder().encode(JSONValue.object(object)))) ?? []
    }

    init(granted: Bool, reason: String, block: UInt64, dependencies: [EthereumAddress], tokens: [String], rentalExpiry: UInt64?) {
        self.granted = granted
        self.reason = reason
        self.block = block
        self.dependencies = dependencies
        self.tokens = tokens
        self.rentalExpiry = rentalExpiry
    }

    init?(json: [UInt8]) {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(json)),
            let granted = value["g"]?.bool, let reason = value["r"]?.string, let block = value["b"]?.uint64,
            let dependencies = value["d"]?.array?.compactMap({ $0.string.flatMap { try? EthereumAddress(hex: $0) } }),
            let tokens = value["t"]?.array?.compactMap(\.string)
        else { return nil }
        self.init(granted: granted, reason: reason, block: block, dependencies: dependencies, tokens: tokens, rentalExpiry: value["x"]?.uint64)
    }
}
