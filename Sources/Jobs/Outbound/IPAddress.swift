import Foundation

/// An IPv4 or IPv6 address: the bytes a socket connects to, in network order.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Sendable { case v4, v6 }

    /// 4 bytes (IPv4) or 16 (IPv6).
    public let bytes: [UInt8]

    public var family: Family { bytes.count == 4 ? .v4 : .v6 }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    init(v4 value: UInt32) {
        bytes = [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    /// Parses an address in its standard form only: dotted-quad IPv4 (no leading zeros) or IPv6
    /// without brackets or zone.
    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// Parses IPv4 the way `inet_aton` does, and so glibc's `getaddrinfo` for a numeric host: one
    /// to four parts, each decimal, octal (`0…`) or hex (`0x…`), the last filling the remaining
    /// bytes. `2130706433`, `0x7f000001`, `017700000001` and `127.1` are all 127.0.0.1.
    public init?(inetATON text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt32] = []
        for part in parts {
            guard let value = Self.inetATONPart(part.utf8) else { return nil }
            values.append(value)
        }
        let lastLimits: [UInt32] = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff]
        guard values.dropLast().allSatisfy({ $0 <= 0xff }), values.last! <= lastLimits[parts.count - 1] else { return nil }
        var value = values.last!
        for (index, byte) in values.dropLast().enumerated() { value |= byte << (24 - 8 * index) }
        self.init(v4: value)
    }

    /// One part of an `inet_aton` address, as C's `strtoul(part, &end, 0)` reads it, with nothing left over.
    private static func inetATONPart(_ text: Substring.UTF8View) -> UInt32? {
        var digits = text[...]
        guard let first = digits.first, (48...57).contains(first) else { return nil }
        var radix: UInt64 = 10
        if first == 48, digits.count > 2, digits.dropFirst().first.map({ $0 | 0x20 }) == UInt8(ascii: "x") {
            radix = 16
            digits = digits.dropFirst(2)
        } else if first == 48 {
            radix = 8
        }
        var value: UInt64 = 0
        for byte in digits {
            let digit: UInt64
            switch byte {
            case 48...57: digit = UInt64(byte - 48)
            case 97...102: digit = UInt64(byte - 87)
            case 65...70: digit = UInt64(byte - 55)
            default: return nil
            }
            guard digit < radix else { return nil }
            value = value * radix + digit
            guard value <= 0xffff_ffff else { return nil }
        }
        return UInt32(value)
    }

    /// Dotted quad, or IPv6 as `inet_ntop` writes it (`::1`, `::ffff:127.0.0.1`).
    public var description: String {
        if family == .v4 { return bytes.map(String.init).joined(separator: ".") }
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return bytes.map(String.init).joined(separator: ":") }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The IPv4 address in four of an IPv6 address's bytes (mapped, NAT64 and 6to4 forms).
    func embeddedV4(at offset: Int) -> IPAddress {
        IPAddress(bytes: Array(bytes[offset..<(offset + 4)]))!
    }
}

/// A block of addresses: `10.0.0.0/8`, `fe80::/10`.
public struct IPAddressRange: Hashable, Sendable, CustomStringConvertible {
    /// The first address; every bit past the prefix is zero.
    public let network: IPAddress
    public let prefixLength: Int

    /// `network` must have no bits set past `prefixLength`.
    public init?(network: IPAddress, prefixLength: Int) {
        guard (0...(network.bytes.count * 8)).contains(prefixLength), Self.masked(network, prefixLength) == network else { return nil }
        self.network = network
        self.prefixLength = prefixLength
    }

    /// `ADDRESS/BITS` in standard form; a bare address is a block of one.
    public init(_ text: String) throws(InvalidRange) {
        let pieces = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(pieces[0])) else { throw InvalidRange("\(text) is not an IP address or block") }
        var bits = address.bytes.count * 8
        if pieces.count == 2 {
            guard pieces[1].allSatisfy(\.isASCII), pieces[1].allSatisfy(\.isNumber), let parsed = Int(pieces[1]), parsed <= bits else {
                throw InvalidRange("\(text): the prefix length must be 0…\(bits)")
            }
            bits = parsed
        }
        guard let range = IPAddressRange(network: address, prefixLength: bits) else {
            throw InvalidRange("\(text) has bits set past /\(bits); did you mean \(Self.masked(address, bits))/\(bits)?")
        }
        self = range
    }

    /// Literal ranges in the source; a typo there is a programming error.
    init(literal text: String) {
        do { self = try IPAddressRange(text) } catch { preconditionFailure("\(error)") }
    }

    public func contains(_ address: IPAddress) -> Bool {
        address.family == network.family && Self.masked(address, prefixLength) == network
    }

    public var description: String { "\(network)/\(prefixLength)" }

    private static func masked(_ address: IPAddress, _ bits: Int) -> IPAddress {
        let bytes = address.bytes.enumerated().map { index, byte -> UInt8 in
            let kept = min(8, max(0, bits - index * 8))
            return kept == 8 ? byte : byte & ~(UInt8(0xff) >> kept)
        }
        return IPAddress(bytes: bytes)!
    }

    public struct InvalidRange: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
