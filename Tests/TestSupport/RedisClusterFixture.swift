import Foundation
import Redis
import Processes

/// Runs `body` with a Redis Cluster of three primaries (with `replicas` replicas each) on loopback
/// ports; afterwards, however `body` ended, the fixture's clients are shut down, the nodes stopped
/// and the folder removed.
public func withRedisCluster<T>(
    replicas: Int = 0,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisClusterFixture) async throws -> T
) async throws -> T {
    let cluster = try await offPool { try RedisClusterFixture(replicas: replicas) }
    return try await withCleanup { try await body(cluster) } cleanup: { await cluster.end() }
}

/// Three cluster nodes, each owning a third of the slots (``ranges``), joined with `CLUSTER MEET`,
/// and optionally replicas of each that take over a primary two seconds after it stops answering.
/// Prefer ``withRedisCluster(replicas:isolation:_:)``.
public final class RedisClusterFixture: @unchecked Sendable {
    /// The primaries' client ports, in slot order.
    public let ports: [Int]
    /// The replicas' ports: `replicaPorts[i]` follow the primary on `ports[i]`.
    public let replicaPorts: [[Int]]
    /// The nodes' ids (`CLUSTER MYID`), in the order of ``ports``.
    public private(set) var nodeIDs: [String] = []
    public static let ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
    private let group: LoopbackRedisGroup
    public var directory: String { group.directory }
    /// The servers' (and sentinels') pids, while they run.
    public var processIdentifiers: [Int32] { group.processIdentifiers }

    public init(replicas: Int = 0) throws {
        group = LoopbackRedisGroup(directory: "/tmp/sg-cluster-" + String(UUID().uuidString.prefix(8)))
        ports = try (0..<3).map { _ in try LoopbackListener.freePort() }
        replicaPorts = try (0..<3).map { _ in try (0..<replicas).map { _ in try LoopbackListener.freePort() } }
        try group.setUp(start)
    }

    private func start() throws {
        // The bus port is chosen too: the default (port + 10000) may be out of range or taken.
        let nodes = ports + replicaPorts.flatMap { $0 }
        let busPorts = try nodes.map { _ in try LoopbackListener.freePort() }
        for (index, port) in nodes.enumerated() {
            try group.start("node\(index)", port: port, arguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", "\(directory)/node\(index)/nodes.conf",
                "--cluster-port", String(busPorts[index]), "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
                "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
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
        guard replicaPorts.contains(where: { !$0.isEmpty }) else { return }
        for (index, port) in nodes.enumerated().dropFirst(ports.count) {
            _ = try connection(ports[0]).send(["CLUSTER", "MEET", "127.0.0.1", String(port), String(busPorts[index])])
        }
        // A replica can follow a primary only once it knows it: wait for the gossip, then attach.
        for (primary, replicas) in replicaPorts.enumerated() {
            for port in replicas {
                try LoopbackRedis.wait("replica \(port) to learn of its primary", seconds: 20) {
                    LoopbackRedis.ask(port, ["CLUSTER", "NODES"])?.text?.contains(nodeIDs[primary]) == true
                }
                _ = try connection(port).send(["CLUSTER", "REPLICATE", nodeIDs[primary]])
            }
        }
        try LoopbackRedis.wait("the replicas to sync and every node to know every other", seconds: 30) {
            replicaPorts.flatMap { $0 }.allSatisfy { LoopbackRedis.ask($0, ["INFO", "replication"])?.text?.contains("master_link_status:up") == true }
                && nodes.allSatisfy { port in
                    let info = LoopbackRedis.ask(port, ["CLUSTER", "INFO"])?.text ?? ""
                    return info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:\(nodes.count)")
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
    public func client(
        seed port: Int, connections: Int = 2, timeout: Double = 5, reconnectWindow: Double = 10, waitReplicas: Int = 0, waitTimeout: Double = 1
    ) -> RedisClient {
        group.keep(RedisClient(
            url: url(port), connections: connections, timeout: timeout, reconnectWindow: reconnectWindow, waitReplicas: waitReplicas,
            waitTimeout: waitTimeout
        ))
    }

    /// SIGKILLs the node on `port`: no shutdown, no last write.
    public func kill(port: Int) {
        let server = group.remove(port: port)
        server?.signal(SIGKILL)
        _ = server?.wait(timeout: 5)
    }

    /// Waits (without blocking a Swift thread) until the node on `port` says it is a primary (a
    /// replica promoted after its primary failed).
    public func promotion(of port: Int, within seconds: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await offPool({ LoopbackRedis.ask(port, ["ROLE"])?.array?.first?.text }) == "master" { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RedisError.connect(endpoint: "127.0.0.1:\(port)", reason: "not promoted within \(Int(seconds)) s")
    }

    /// Shuts the clients down, stops the nodes and removes the folder; only the first call acts.
    public func end() async { await group.end() }
}
