/// An unsigned 256-bit integer (Solidity's `uint256`), held as 32 big-endian bytes: the form it has
/// in ABI data. Only what token ids and balances need: decimal text, comparison, increment and
/// difference. Not a general big-integer type.
public struct UInt256: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The value's 32 bytes, most significant first.
    public let bytes: [UInt8]

    public static let zero = UInt256(uncheckedBytes: [UInt8](repeating: 0, count: 32))
    public static let max = UInt256(uncheckedBytes: [UInt8](repeating: 0xff, count: 32))

    init(uncheckedBytes: [UInt8]) { bytes = uncheckedBytes }

    /// A value from up to 32 big-endian bytes (fewer are left-padded with zeros); nil for more.
    public init?(bigEndian: some Collection<UInt8>) {
        guard bigEndian.count <= 32 else { return nil }
        bytes = [UInt8](repeating: 0, count: 32 - bigEndian.count) + Array(bigEndian)
    }

    public init(_ value: UInt64) {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in 0..<8 { bytes[31 - index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
        self.bytes = bytes
    }

    /// Parses decimal digits only: no sign, no spaces, no leading zeros (except `0` itself), at most
    /// 2²⁵⁶ − 1. Nil otherwise.
    public init?(decimal text: some StringProtocol) {
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.count <= 78 else { return nil }
        guard digits.count == 1 || digits[0] != UInt8(ascii: "0") else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            var carry = UInt16(digit - UInt8(ascii: "0"))
            for index in stride(from: 31, through: 0, by: -1) {
                let product = UInt16(bytes[index]) * 10 + carry
                bytes[index] = UInt8(truncatingIfNeeded: product)
                carry = product >> 8
            }
            guard carry == 0 else { return nil }
        }
        self.bytes = bytes
    }

    /// The value in decimal.
    public var description: String {
        var value = bytes
        var digits: [UInt8] = []
        while value.contains(where: { $0 != 0 }) {
            var remainder: UInt16 = 0
            for index in 0..<32 {
                let current = remainder << 8 | UInt16(value[index])
                value[index] = UInt8(current / 10)
                remainder = current % 10
            }
            digits.append(UInt8(ascii: "0") + UInt8(remainder))
        }
        return digits.isEmpty ? "0" : String(decoding: digits.reversed(), as: UTF8.self)
    }

    /// The value when it fits in 64 bits.
    public var uint64: UInt64? {
        guard bytes[0..<24].allSatisfy({ $0 == 0 }) else { return nil }
        return bytes[24..<32].reduce(0) { $0 << 8 | UInt64($1) }
    }

    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

    /// `self + 1`, nil on overflow.
    public func incremented() -> UInt256? {
        var out = bytes
        for index in stride(from: 31, through: 0, by: -1) {
            if out[index] == 0xff { out[index] = 0 } else { out[index] += 1; return UInt256(uncheckedBytes: out) }
        }
        return nil
    }

    /// `self - other`, nil when `other` is larger.
    public func subtracting(_ other: UInt256) -> UInt256? {
        guard other <= self else { return nil }
        var out = bytes
        var borrow = 0
        for index in stride(from: 31, through: 0, by: -1) {
            var difference = Int(out[index]) - Int(other.bytes[index]) - borrow
            borrow = difference < 0 ? 1 : 0
            if difference < 0 { difference += 256 }
            out[index] = UInt8(difference)
        }
        return UInt256(uncheckedBytes: out)
    }

    public static func < (lhs: UInt256, rhs: UInt256) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}
