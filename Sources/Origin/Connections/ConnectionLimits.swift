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
