import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// What one connection, and one client, may hold of the server. Each open connection costs a
/// descriptor, and descriptors are few (systemd gives services 1,024 by default): without these
/// bounds a single client holding idle or half-sent connections stops the server for everyone.
public struct ConnectionLimits: Sendable, Equatable {
    /// A connection with nothing to do (no byte either way, no answer being prepared) is closed
    /// after this long; so is one whose client stopped reading what it is sent.
    public var idleTimeout: TimeAmount
    /// A request head must arrive whole within this long of its first byte.
    public var headerTimeout: TimeAmount
    /// Connections one client (an IPv4 address, or an IPv6 /64) may hold at once; 0: no cap.
    public var perClient: Int
    /// Connections the server holds at once; more wait in the listen backlog. 0: the descriptor
    /// limit less a reserve for files, Redis and the chain.
    public var total: Int

    public init(idleTimeout: TimeAmount = .seconds(60), headerTimeout: TimeAmount = .seconds(10), perClient: Int = 256, total: Int = 0) {
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.perClient = perClient
        self.total = total
    }

    /// Descriptors kept for everything that is not a client connection.
    static let reservedDescriptors = 256

    /// ``total``, or when 0 what the process's descriptor limit leaves for connections.
    public var effectiveTotal: Int {
        if total > 0 { return total }
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 - Self.reservedDescriptors }
        let soft = Int(min(limit.rlim_cur, 1 << 20))  // RLIM_INFINITY is the largest value
        return max(16, soft - Self.reservedDescriptors)
    }

    /// Raises this process's soft descriptor limit to its hard limit (systemd's default is 1,024
    /// soft, 524,288 hard: the soft one is for `select`, which StreamGate never uses). Returns the
    /// soft limit in force afterwards.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(min(limit.rlim_cur, rlim_t(Int.max)))
    }
}

/// Who a client is, for limits: an IPv4 address, or the /64 of an IPv6 one (one subscriber's
/// network is usually a whole /64, so a per-address limit would not bound it). An IPv4-mapped IPv6
/// address is its IPv4 address.
public struct ClientKey: Hashable, Sendable, CustomStringConvertible {
    /// The IPv4 address, or the first 64 bits of the IPv6 one.
    let bits: UInt64
    let isIPv6: Bool

    /// nil for a client that has no IP address (a Unix socket).
    public init?(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4)?:
            bits = UInt64(UInt32(bigEndian: v4.address.sin_addr.s_addr))
            isIPv6 = false
        case .v6(let v6)?:
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                bits = bytes[12..<16].reduce(0) { $0 << 8 | UInt64($1) }
                isIPv6 = false
            } else {
                bits = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
                isIPv6 = true
            }
        default:
            return nil
        }
    }

    public var description: String {
        if !isIPv6 {
            return (0..<4).reversed().map { String((bits >> ($0 * 8)) & 0xff) }.joined(separator: ".")
        }
        let groups = (0..<4).reversed().map { String((bits >> ($0 * 16)) & 0xffff, radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}

/// How many connections each client holds, shared by every event loop; a client at its cap gets
/// no more.
final class ClientConnections: Sendable {
    let perClient: Int
    private let counts = NIOLockedValueBox<[ClientKey: Int]>([:])

    init(perClient: Int) {
        self.perClient = perClient
    }

    /// Counts a new connection of `client`; false (not counted) when the client is at its cap.
    func open(_ client: ClientKey) -> Bool {
        counts.withLockedValue { counts in
            let held = counts[client, default: 0]
            guard perClient == 0 || held < perClient else { return false }
            counts[client] = held + 1
            return true
        }
    }

    func close(_ client: ClientKey) {
        counts.withLockedValue { counts in
            let held = counts[client, default: 1] - 1
            counts[client] = held > 0 ? held : nil
        }
    }

    func held(by client: ClientKey) -> Int {
        counts.withLockedValue { $0[client, default: 0] }
    }
}
