import Foundation

/// Where a Redis server is: `redis://[[user]:password@]host[:port][/db]`,
/// `unix:///path/to/redis.sock[?db=N&password=P]`, or a primary found through Sentinel:
/// `redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]…]/service[/db]`.
///
/// A `redis://` URL may name any node of a Redis Cluster: ``RedisClient`` asks it for the cluster's
/// slots on first use. With Sentinel, the credentials and database are the primary's
/// (sentinels are asked without them) and the sentinels' port defaults to 26379.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// A TCP address.
    public struct Address: Sendable, Equatable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
        /// The primary of `service`, as the sentinels at these addresses know it now.
        case sentinel(sentinels: [Address], service: String)
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

    /// This URL's credentials and database at another TCP address: a cluster node, the primary a
    /// sentinel named.
    public func at(_ address: Address) -> RedisURL {
        RedisURL(endpoint: .tcp(host: address.host, port: address.port), username: username, password: password, database: database)
    }

    /// Parses a URL; the error says which part is wrong.
    public init(_ text: String) throws(RedisError) {
        if text.hasPrefix("unix://") {
            self = try Self.parseUnix(text)
        } else if text.hasPrefix("redis+sentinel://") {
            self = try Self.parseSentinel(text)
        } else if text.hasPrefix("redis://") {
            self = try Self.parseTCP(text)
        } else {
            throw .badURL(text, reason: "must start with redis://, redis+sentinel:// or unix://")
        }
    }

    private static func parseUnix(_ text: String) throws(RedisError) -> RedisURL {
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
        return RedisURL(endpoint: .unix(path: path), password: password, database: database)
    }

    private static func parseTCP(_ text: String) throws(RedisError) -> RedisURL {
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
        return RedisURL(endpoint: .tcp(host: host, port: port), username: user, password: password, database: database)
    }

    /// `redis+sentinel://[user:pass@]h1:p1,h2:p2/service[/db]`. Written by hand: URLComponents
    /// does not take several hosts.
    private static func parseSentinel(_ text: String) throws(RedisError) -> RedisURL {
        var rest = Substring(text.dropFirst("redis+sentinel://".count))
        guard let slash = rest.firstIndex(of: "/") else {
            throw .badURL(text, reason: "no service name: redis+sentinel://host:port,…/service[/db]")
        }
        var authority = rest[..<slash]
        rest = rest[rest.index(after: slash)...]
        var username: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            let parts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { throw .badURL(text, reason: "credentials must be user:password or :password") }
            username = parts[0].isEmpty ? nil : (parts[0].removingPercentEncoding ?? parts[0])
            password = parts[1].removingPercentEncoding ?? parts[1]
        }
        var sentinels: [Address] = []
        for (index, item) in authority.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            sentinels.append(try sentinelAddress(String(item), number: index + 1, url: text))
        }
        let path = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let service = path.first, !service.isEmpty else {
            throw .badURL(text, reason: "no service name: redis+sentinel://host:port,…/service[/db]")
        }
        guard service.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw .badURL(text, reason: "service name '\(service)' may hold only letters, digits, '-', '_' and '.'")
        }
        var database = 0
        if path.count > 1, !(path.count == 2 && path[1].isEmpty) {
            guard path.count == 2, let number = Int(path[1]), number >= 0 else {
                throw .badURL(text, reason: "after the service name only a database number may follow, not '\(path.dropFirst().joined(separator: "/"))'")
            }
            database = number
        }
        return RedisURL(endpoint: .sentinel(sentinels: sentinels, service: service), username: username, password: password, database: database)
    }

    private static func sentinelAddress(_ item: String, number: Int, url: String) throws(RedisError) -> Address {
        guard !item.isEmpty else { throw .badURL(url, reason: "sentinel \(number) is empty (a stray comma?)") }
        var host = item
        var portText: String?
        if item.hasPrefix("[") {
            guard let close = item.firstIndex(of: "]") else { throw .badURL(url, reason: "sentinel \(number) '\(item)': unclosed '['") }
            host = String(item[item.index(after: item.startIndex)..<close])
            let after = item[item.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .badURL(url, reason: "sentinel \(number) '\(item)': expected ':port' after ']'") }
                portText = String(after.dropFirst())
            }
        } else if let colon = item.firstIndex(of: ":") {
            host = String(item[..<colon])
            portText = String(item[item.index(after: colon)...])
        }
        guard !host.isEmpty else { throw .badURL(url, reason: "sentinel \(number) '\(item)' has no host") }
        guard !host.contains(where: { $0 == "/" || $0 == "@" || $0 == "?" || $0.isWhitespace }) else {
            throw .badURL(url, reason: "sentinel \(number) host '\(host)' is not a host name")
        }
        var port = 26379
        if let portText {
            guard let value = Int(portText) else { throw .badURL(url, reason: "sentinel \(number) '\(item)': port '\(portText)' is not a number") }
            guard (1...65535).contains(value) else { throw .badURL(url, reason: "sentinel \(number) '\(item)': port \(value) out of range") }
            port = value
        }
        return Address(host: host, port: port)
    }

    /// The endpoint without credentials, for logs and errors.
    public var description: String {
        switch endpoint {
        case .tcp(let host, let port): "redis://\(Address(host: host, port: port))/\(database)"
        case .unix(let path): "unix://\(path)" + (database != 0 ? "?db=\(database)" : "")
        case .sentinel(let sentinels, let service):
            "redis+sentinel://\(sentinels.map(\.description).joined(separator: ","))/\(service)/\(database)"
        }
    }
}
