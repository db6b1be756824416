import NIOCore

/// Who a client is, for every per-client limit (connections, request rates): an IPv4 address, or
/// the /64 of an IPv6 one (one subscriber's network is usually a whole /64, so a per-address limit
/// would hand an attacker 2^64 fresh ones). An IPv4-mapped IPv6 address is its IPv4 address; a
/// client with no IP address (a Unix socket, a test's router) is ``local``.
public struct ClientKey: Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable { case ipv4, ipv6, local }

    /// The IPv4 address, or the first 64 bits of the IPv6 one.
    private let bits: UInt64
    private let kind: Kind
    /// 127.0.0.0/8 or ::1 (or ``local``): this machine.
    public let isLoopback: Bool

    public static let local = ClientKey(bits: 0, kind: .local, isLoopback: true)

    private init(bits: UInt64, kind: Kind, isLoopback: Bool) {
        self.bits = bits
        self.kind = kind
        self.isLoopback = isLoopback
    }

    /// nil for a client that has no IP address.
    public init?(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4)?:
            self.init(ipv4: UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6)?:
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                self.init(ipv4: bytes[12..<16].reduce(0) { $0 << 8 | UInt32($1) })
            } else {
                let loopback = bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
                self.init(bits: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, kind: .ipv6, isLoopback: loopback)
            }
        default:
            return nil
        }
    }

    private init(ipv4: UInt32) {
        self.init(bits: UInt64(ipv4), kind: .ipv4, isLoopback: ipv4 >> 24 == 127)
    }

    public var description: String {
        switch kind {
        case .ipv4: return (0..<4).reversed().map { String((bits >> ($0 * 8)) & 0xff) }.joined(separator: ".")
        case .ipv6 where isLoopback: return "::1"
        case .ipv6: return (0..<4).reversed().map { String((bits >> ($0 * 16)) & 0xffff, radix: 16) }.joined(separator: ":") + "::/64"
        case .local: return "local"
        }
    }
}
