import Ethereum

/// One token id (`"5"`) or an inclusive range of them (`"5-9"`), in decimal.
public struct TokenIDRange: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let lower: UInt256
    public let upper: UInt256

    /// A range `lower...upper`; nil when `lower > upper`.
    public init?(_ lower: UInt256, _ upper: UInt256) {
        guard lower <= upper else { return nil }
        self.lower = lower
        self.upper = upper
    }

    public init(_ id: UInt256) {
        lower = id
        upper = id
    }

    /// `"5"` or `"5-9"`; nil for anything else.
    public init?(text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            guard let id = UInt256(decimal: parts[0]) else { return nil }
            self.init(id)
        case 2:
            guard let lower = UInt256(decimal: parts[0]), let upper = UInt256(decimal: parts[1]) else { return nil }
            self.init(lower, upper)
        default:
            return nil
        }
    }

    /// How many ids it covers, when that fits 64 bits.
    public var count: UInt64? { upper.subtracting(lower)?.uint64.flatMap { $0 == .max ? nil : $0 + 1 } }

    /// The ids, in order (ranges are bounded by ``AccessPolicy/maxTokenIDs`` when decoded).
    public var ids: [UInt256] {
        var out = [lower]
        var current = lower
        while current < upper, let next = current.incremented() {
            out.append(next)
            current = next
        }
        return out
    }

    public func contains(_ id: UInt256) -> Bool { lower <= id && id <= upper }

    public var description: String { lower == upper ? lower.description : "\(lower)-\(upper)" }

    public static func < (lhs: TokenIDRange, rhs: TokenIDRange) -> Bool {
        lhs.lower != rhs.lower ? lhs.lower < rhs.lower : lhs.upper < rhs.upper
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let range = TokenIDRange(text: text) else {
            throw AccessPolicyError(path: PolicyReader.path(decoder.codingPath), reason: "'\(text)' is not a token id or range (decimal \"5\" or \"5-9\")")
        }
        self = range
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
