import Foundation

/// Where a Redis server is: `redis://[[user]:password@]host[:port][/db]` or
/// `unix:///path/to/redis.sock[?db=N&password=P]`.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    public var username: String?
    public var password: String?
    public var database: Int

    public init(endpoint: Endpoint, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a URL; the error says which part is wrong.
    public init(_ text: String) throws(RedisError) {
        if text.hasPrefix("unix://") {
            let rest = text.dropFirst("unix://".count)
            let (path, query) = rest.firstIndex(of: "?").map { (String(rest[..<$0]), String(rest[rest.index(after: $0)...])) }
                ?? (String(rest), "")
            guard path.hasPrefix("/") else { throw .badURL(text, reason: "a unix socket path must be absolute") }
            var database = 0
            var password: String?
            for pair in query.split(separator: "&") where !pair.isEmpty {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                let value = parts.count > 1 ? (parts[1].removingPercentEncoding ?? parts[1]) : ""
                switch parts[0] {
                case "db":
                    guard let number = Int(value), number >= 0 else { throw .badURL(text, reason: "db must be a number ≥ 0") }
                    database = number
                case "password": password = value
                default: throw .badURL(text, reason: "unknown parameter '\(parts[0])' (db, password)")
                }
            }
            self.init(endpoint: .unix(path: path), password: password, database: database)
            return
        }
        guard text.hasPrefix("redis://") else {
            throw .badURL(text, reason: "must start with redis:// or unix://")
        }
        guard let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
            throw .badURL(text, reason: "no host")
        }
        let port = components.port ?? 6379
        guard (1...65535).contains(port) else { throw .badURL(text, reason: "port \(port) out of range") }
        var database = 0
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let number = Int(path), number >= 0 else { throw .badURL(text, reason: "the path must be a database number") }
            database = number
        }
        let user = components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding ?? $0 }
        let password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.init(endpoint: .tcp(host: host, port: port), username: user, password: password, database: database)
    }

    /// The endpoint without credentials, for logs and errors.
    public var description: String {
        switch endpoint {
        case .tcp(let host, let port): "redis://\(host):\(port)/\(database)"
        case .unix(let path): "unix://\(path)" + (database != 0 ? "?db=\(database)" : "")
        }
    }
}
