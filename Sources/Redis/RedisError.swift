/// A Redis failure: the server's error reply, or the connection's (hiredis `errstr`).
public enum RedisError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The server answered with an error reply (`ERR …`, `NOGROUP …`, `BUSYGROUP …`).
    case server(String)
    /// Connecting failed; nothing was sent.
    case connect(endpoint: String, reason: String)
    /// The connection failed while a command was in flight: the command may or may not have run.
    case connection(endpoint: String, reason: String)
    /// A URL that is not `redis://…`, `redis+sentinel://…` or `unix://…`, or has a wrong part.
    case badURL(String, reason: String)
    /// A durable write ran on the primary but fewer replicas than wanted confirmed it within the
    /// wait (``RedisClient/waitReplicas``): it may not survive a failover.
    case notReplicated(endpoint: String, replicas: Int, wanted: Int)
    /// A reply that does not have the shape the caller expects.
    case unexpectedReply(command: String, reply: String)

    public var description: String {
        switch self {
        case .server(let message): "redis: \(message)"
        case .connect(let endpoint, let reason): "redis \(endpoint): cannot connect: \(reason)"
        case .connection(let endpoint, let reason): "redis \(endpoint): connection lost: \(reason)"
        case .badURL(let url, let reason): "redis URL '\(url)': \(reason)"
        case .unexpectedReply(let command, let reply): "redis: unexpected reply to \(command): \(reply)"
        case .notReplicated(let endpoint, let replicas, let wanted):
            "redis \(endpoint): write reached \(replicas) of \(wanted) replicas in time; not acknowledged"
        }
    }

    /// True when the command certainly did not reach the server, so sending it again is safe.
    public var isConnectFailure: Bool {
        if case .connect = self { return true }
        return false
    }

    /// True for failures of the link rather than of the command.
    public var isConnectionFailure: Bool {
        switch self {
        case .connect, .connection: true
        default: false
        }
    }

    /// The error code of a server error reply: its first word (`NOGROUP`, `BUSYGROUP`, `ERR`).
    public var serverCode: String? {
        guard case .server(let message) = self else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }
}
