import Foundation
import Redis
import Processes

/// Runs `body` with a Redis Cluster of three primaries (no replicas) on loopback ports; afterwards,
/// however `body` ended, the fixture's clients are shut down, the nodes stopped and the folder removed.
public func withRedisCluster<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisClusterFixture) async throws -> T
) async throws -> T {
    let cluster = try await offPool { try RedisClusterFixture() }
    return try await withCleanup { try await body(cluster) } cleanup: { await cluster.end() }
}

/// Three cluster nodes, each owning a third of the slots (``ranges``), joined with `CLUSTER MEET`.
/// Prefer ``withRedisCluster(isolation:_:)``.
public final class RedisClusterFixture: @unchecked Sendable {
    /// The nodes' client ports, in slot order.
    public let ports: [Int]
    /// The nodes' ids (`CLUSTER MYID`), in the order of ``ports``.
    public private(set) var nodeIDs: [String] = []
    public static let ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
    private let group: LoopbackRedisGroup
    public var directory: String { group.directory }
    /// The servers' (and sentinels') pids, while they run.
    public var processIdentifiers: [Int32] { group.processIdentifiers }

    public init() throws {
        group = LoopbackRedisGroup(directory: "/tmp/sg-cluster-" + String(UUID().uuidString.prefix(8)))
        ports = try (0..<3).map { _ in try LoopbackListener.freePort() }
        try group.setUp(start)
    }

    private func start() throws {
        // The bus port is chosen too: the default (port + 10000) may be out of range or taken.
        let busPorts = try ports.map { _ in try LoopbackListener.freePort() }
        for (index, port) in ports.enumerated() {
            try group.start("node\(index)", port: port, arguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", "\(directory)/node\(index)/nodes.conf",
                "--cluster-port", String(busPorts[index]), "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
            ])
        }
        for (index, port) in ports.enumerated() {
            let connection = try self.connection(port)
            nodeIDs.append(try connection.send(["CLUSTER", "MYID"]).text ?? "")
            let (first, last) = Self.ranges[index]
            _ = try connection.send(["CLUSTER", "ADDSLOTSRANGE", String(first), String(last)])
            if index > 0 {
                _ = try self.connection(ports[0]).send(["CLUSTER", "MEET", "127.0.0.1", String(port), String(busPorts[index])])
            }
        }
        try LoopbackRedis.wait("the cluster to come up", seconds: 20) {
            ports.allSatisfy { port in
                let info = LoopbackRedis.ask(port, ["CLUSTER", "INFO"])?.text ?? ""
                return info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") && info.contains("cluster_slots_ok:16384")
            }
        }
    }

    /// A blocking connection straight to one node, for what a test does behind the client's back
    /// (`CLUSTER SETSLOT`, `MIGRATE`).
    public func connection(_ port: Int) throws -> RedisConnection {
        try RedisConnection(url: url(port), timeout: 5)
    }

    public func url(_ port: Int) -> RedisURL { RedisURL(endpoint: .tcp(host: "127.0.0.1", port: port)) }

    /// The index (in ``ports``) of the node owning `slot` as the fixture set it up.
    public static func owner(of slot: Int) -> Int { ranges.firstIndex { $0.0 <= slot && slot <= $0.1 }! }

    /// A client that starts at the node on `port`, shut down when the fixture ends.
    public func client(seed port: Int, connections: Int = 2, timeout: Double = 5, reconnectWindow: Double = 10) -> RedisClient {
        group.keep(RedisClient(url: url(port), connections: connections, timeout: timeout, reconnectWindow: reconnectWindow))
    }

    /// Shuts the clients down, stops the nodes and removes the folder; only the first call acts.
    public func end() async { await group.end() }
}
