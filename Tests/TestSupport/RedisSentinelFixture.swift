import Foundation
import Redis
import Processes

/// Runs `body` with a primary, two replicas and three sentinels watching them, all on loopback
/// ports; afterwards, however `body` ended, the fixture's clients are shut down, every process
/// still running is stopped and the folder removed.
public func withSentinelRedis<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisSentinelFixture) async throws -> T
) async throws -> T {
    let redis = try await offPool { try RedisSentinelFixture() }
    return try await withCleanup { try await body(redis) } cleanup: { await redis.end() }
}

/// A primary, two replicas of it, and three sentinels (quorum 2) that fail over to a replica one
/// second after the primary stops answering. Two replicas, so that after a failover the new
/// primary still has one: writes that `WAIT` for a replica go on being acknowledged. Prefer
/// ``withSentinelRedis(isolation:_:)``.
public final class RedisSentinelFixture: Sendable {
    /// The service name the sentinels monitor.
    public let service = "sg"
    public let primaryPort: Int
    public let replicaPorts: [Int]
    public let sentinelPorts: [Int]
    private let group: LoopbackRedisGroup
    public var directory: String { group.directory }
    /// The servers' (and sentinels') pids, while they run.
    public var processIdentifiers: [Int32] { group.processIdentifiers }
    /// `redis+sentinel://127.0.0.1:p1,…/sg`.
    public var url: RedisURL {
        RedisURL(endpoint: .sentinel(sentinels: sentinelPorts.map { .init(host: "127.0.0.1", port: $0) }, service: service))
    }
    public var urlString: String { "redis+sentinel://" + sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/" + service }

    /// Starts everything and waits (blocking) until the sentinels know the replicas and each other.
    public init() throws {
        group = LoopbackRedisGroup(directory: "/tmp/sg-ha-" + String(UUID().uuidString.prefix(8)))
        primaryPort = try LoopbackListener.freePort()
        replicaPorts = try (0..<2).map { _ in try LoopbackListener.freePort() }
        sentinelPorts = try (0..<3).map { _ in try LoopbackListener.freePort() }
        try group.setUp(start)
    }

    private func start() throws {
        let data = ["--save", "", "--appendonly", "no", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
        try group.start("primary", port: primaryPort, arguments: data)
        for (index, port) in replicaPorts.enumerated() {
            try group.start("replica\(index)", port: port, arguments: data + ["--replicaof", "127.0.0.1", String(primaryPort)])
        }
        try LoopbackRedis.wait("replication to start", seconds: 10) {
            replicaPorts.allSatisfy { LoopbackRedis.ask($0, ["INFO", "replication"])?.text?.contains("master_link_status:up") == true }
        }
        for (index, port) in sentinelPorts.enumerated() {
            let config = """
                sentinel monitor \(service) 127.0.0.1 \(primaryPort) 2
                sentinel down-after-milliseconds \(service) 1000
                sentinel failover-timeout \(service) 4000
                sentinel parallel-syncs \(service) 1

                """
            try group.start("sentinel\(index)", port: port, arguments: ["--sentinel"], configFile: config)
        }
        // A failover needs sentinels that know the replicas and enough of each other for a quorum.
        try LoopbackRedis.wait("sentinels to find the replicas and each other", seconds: 20) {
            sentinelPorts.allSatisfy { port in
                LoopbackRedis.ask(port, ["SENTINEL", "replicas", service])?.array?.count == replicaPorts.count
                    && LoopbackRedis.ask(port, ["SENTINEL", "sentinels", service])?.array?.count == 2
            }
        }
    }

    /// A client through the sentinels, shut down when the fixture ends.
    public func client(connections: Int = 2, timeout: Double = 2, reconnectWindow: Double = 20, waitReplicas: Int = 0, waitTimeout: Double = 1) -> RedisClient {
        group.keep(RedisClient(
            url: url, connections: connections, timeout: timeout, reconnectWindow: reconnectWindow, waitReplicas: waitReplicas, waitTimeout: waitTimeout
        ))
    }

    /// SIGKILLs the server on `port` (the first primary by default): no shutdown, no last write.
    public func kill(port: Int? = nil) {
        let server = group.remove(port: port ?? primaryPort)
        server?.signal(SIGKILL)
        _ = server?.wait(timeout: 5)
    }

    /// Waits (without blocking a Swift thread) until every sentinel names a primary other than
    /// `old` and that server says it is one; returns its port.
    public func failover(from old: Int, within seconds: Double = 30) async throws -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let named = try await offPool { [self] in
                sentinelPorts.map { port -> Int? in
                    guard let parts = LoopbackRedis.ask(port, ["SENTINEL", "get-master-addr-by-name", service])?.array, parts.count == 2 else { return nil }
                    return parts[1].int.map { Int($0) }
                }
            }
            if let first = named.first, let port = first, port != old, named.allSatisfy({ $0 == port }) {
                let role = try await offPool { LoopbackRedis.ask(port, ["ROLE"])?.array?.first?.text }
                if role == "master" { return port }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RedisError.connect(endpoint: urlString, reason: "no failover from port \(old) within \(Int(seconds)) s")
    }

    /// Shuts the clients down, stops every process and removes the folder; only the first call acts.
    public func end() async { await group.end() }
}
