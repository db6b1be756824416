import Foundation
import NIOConcurrencyHelpers
import NIOPosix

/// A pool of blocking hiredis connections behind an async API.
///
/// Every call runs on the client's own thread pool — never on an event loop or Swift's cooperative
/// pool — and the pool has as many connections (per server) as threads, so a call never waits for
/// a connection while holding a thread. A connection that fails is dropped; the next call connects
/// again, retrying with exponential backoff and full jitter for up to ``reconnectWindow`` seconds.
///
/// A command in flight when its connection fails is not re-sent (it may have run): the caller gets
/// ``RedisError/connection(endpoint:reason:)`` and decides. Blocking commands (`XREADGROUP … BLOCK`)
/// hold a thread for their whole wait: give them their own client.
///
/// No single point of failure (``RedisURL``):
/// - `redis+sentinel://…/service`: every new connection asks the sentinels for the primary and
///   checks its `ROLE`. A server that answers `READONLY`, `LOADING` or `MASTERDOWN` (a demoted or
///   restarting primary) ran nothing: its connections are dropped and the command is sent again to
///   the primary found anew, with backoff, for up to ``reconnectWindow`` seconds.
/// - Redis Cluster: a `redis://` URL may name any node. The first connection asks it for
///   `CLUSTER SLOTS` (a plain server refuses, and stays plain); from then on every command goes to
///   the node of its first key's slot; `MOVED` refreshes the map, `ASK` is followed once with
///   `ASKING`, `TRYAGAIN` and `CLUSTERDOWN` are retried with backoff. A node that refuses
///   connections (a dead primary) is tried once, and the slots are asked of the other nodes again,
///   with backoff, until a replica owns its slots, for up to ``reconnectWindow`` seconds.
///   StreamGate's keys share one hash tag, so its scripts and pipelines stay in one slot.
public final class RedisClient: Sendable {
    public let url: RedisURL
    /// Seconds a call keeps trying to connect (or to find the primary again) before it fails.
    public let reconnectWindow: Double
    /// Replicas a durable write (``eval(_:keys:arguments:durable:)``, ``evalMany(_:calls:durable:)``
    /// with `durable: true`: the queue's enqueue and finish) must reach before it is acknowledged,
    /// checked with `WAIT waitReplicas waitTimeout` on the connection that wrote. 0, the default,
    /// waits for nothing. With 1 and a replica behind Sentinel, a failover loses no write the caller
    /// was told succeeded; when fewer replicas confirm in time, the call throws
    /// ``RedisError/notReplicated(endpoint:replicas:wanted:)`` (the write is on the primary, and
    /// may or may not survive a failover: retry it, idempotently).
    public let waitReplicas: Int
    /// Seconds `WAIT` waits for ``waitReplicas``.
    public let waitTimeout: Double
    private let timeout: Double
    private let threads: NIOThreadPool
    /// Idle connections by the server they go to (``RedisConnection/url``'s description).
    private let idle = NIOLockedValueBox<[String: [RedisConnectionBox]]>([:])
    /// The cluster's slot map once the server said there is one, and the slot last used (where
    /// ``withConnection(_:)`` goes).
    private let cluster = NIOLockedValueBox(ClusterState())

    /// - Parameters:
    ///   - connections: threads, and connections per server; calls beyond this wait for a thread.
    ///   - timeout: connect and reply timeout, seconds.
    ///   - waitReplicas: see ``waitReplicas``; `waitTimeout` bounds its wait, seconds.
    public init(
        url: RedisURL, connections: Int = 4, timeout: Double = 5, reconnectWindow: Double = 10,
        waitReplicas: Int = 0, waitTimeout: Double = 1
    ) {
        self.url = url
        self.timeout = timeout
        self.reconnectWindow = reconnectWindow
        self.waitReplicas = max(0, waitReplicas)
        self.waitTimeout = waitTimeout
        threads = NIOThreadPool(numberOfThreads: max(1, connections))
        threads.start()
    }

    public convenience init(
        url: String, connections: Int = 4, timeout: Double = 5, reconnectWindow: Double = 10, waitReplicas: Int = 0, waitTimeout: Double = 1
    ) throws(RedisError) {
        self.init(
            url: try RedisURL(url), connections: connections, timeout: timeout, reconnectWindow: reconnectWindow,
            waitReplicas: waitReplicas, waitTimeout: waitTimeout
        )
    }

    /// Closes every connection and stops the threads.
    public func shutdown() async {
        try? await threads.shutdownGracefully()
        idle.withLockedValue { $0.removeAll() }
    }

    /// Whether the server has shown itself a cluster node (`CLUSTER SLOTS` on first use, or a
    /// `MOVED`): routing by slot is on.
    public var isCluster: Bool { cluster.withLockedValue { $0.map != nil } }

    /// Sends one command; an error reply throws ``RedisError/server(_:)``.
    @discardableResult
    public func send(_ arguments: [String]) async throws(RedisError) -> RedisValue {
        try await send(bytes: arguments.map { Array($0.utf8) })
    }

    /// Sends one command of binary-safe arguments.
    @discardableResult
    public func send(bytes arguments: [[UInt8]]) async throws(RedisError) -> RedisValue {
        try await routed(slot: RedisCluster.slot(ofCommand: arguments)) { connection throws(RedisError) in try connection.send(bytes: arguments) }
    }

    /// Sends commands in one round trip; error replies come back in place. In a cluster the
    /// pipeline goes to the node of its first key; a command redirected from there is sent again
    /// on its own where it belongs.
    public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RedisValue] {
        try await pipeline(bytes: commands.map { $0.map { Array($0.utf8) } }, script: nil, durable: false)
    }

    /// Runs `body` with a pooled connection on a pool thread. `body` may send several commands;
    /// it must not keep the connection. In a cluster it runs on the node of the slot used last, and
    /// is run again where a redirection (or a failover) sends it: its commands must share one
    /// slot, and any it sent before the redirected one must be harmless to repeat.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (RedisConnection) throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        try await routed(slot: cluster.withLockedValue { $0.lastSlot }, body)
    }

    // MARK: - Scripts and durable writes

    /// Runs a Lua script by its SHA1, loading it when the server does not know it yet (first use,
    /// after a restart, or a cluster node that never ran it). Arguments are binary-safe. Routed by
    /// the first key. `durable`: acknowledged only once ``waitReplicas`` replicas have the write.
    public func eval(_ script: RedisScript, keys: [String], arguments: [[UInt8]], durable: Bool = false) async throws(RedisError) -> RedisValue {
        let reply = try await sendOne(Self.evalsha(script, keys: keys, arguments: arguments), script: script, durable: durable)
        if case .error(let message) = reply { throw .server(message) }
        return reply
    }

    /// Runs one script many times in one round trip (loading it once when the server needs it);
    /// error replies come back in place. `durable` as in ``eval(_:keys:arguments:durable:)``.
    public func evalMany(_ script: RedisScript, calls: [(keys: [String], arguments: [[UInt8]])], durable: Bool = false) async throws(RedisError) -> [RedisValue] {
        guard !calls.isEmpty else { return [] }
        return try await pipeline(bytes: calls.map { Self.evalsha(script, keys: $0.keys, arguments: $0.arguments) }, script: script, durable: durable)
    }

    private static func evalsha(_ script: RedisScript, keys: [String], arguments: [[UInt8]]) -> [[UInt8]] {
        [Array("EVALSHA".utf8), Array(script.sha.utf8), Array(String(keys.count).utf8)] + keys.map { Array($0.utf8) } + arguments
    }

    /// `WAIT` for ``waitReplicas`` on the connection that just wrote.
    private func awaitReplicas(_ connection: RedisConnection) throws(RedisError) {
        guard waitReplicas > 0 else { return }
        // `WAIT n 0` would block for ever: at least a millisecond. The reply may take the whole
        // wait, beyond the usual reply timeout.
        let milliseconds = max(1, Int((waitTimeout * 1000).rounded()))
        let reply = try connection.withReplyTimeout(waitTimeout + timeout) { () throws(RedisError) -> RedisValue in
            try connection.send(["WAIT", String(waitReplicas), String(milliseconds)])
        }
        let acknowledged = Int(reply.int ?? 0)
        if acknowledged < waitReplicas {
            throw .notReplicated(endpoint: connection.address, replicas: acknowledged, wanted: waitReplicas)
        }
    }

    private static func isNoScript(_ reply: RedisValue) -> Bool {
        if case .error(let message) = reply { return message.hasPrefix("NOSCRIPT") }
        return false
    }

    /// Commands on one connection: the scripts loaded where the server lacks them, a redirection or
    /// failover of the whole batch followed, then each command redirected on its own sent again.
    private func pipeline(bytes commands: [[[UInt8]]], script: RedisScript?, durable: Bool) async throws(RedisError) -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        let slot = commands.lazy.compactMap { RedisCluster.slot(ofCommand: $0) }.first
        var replies = try await routed(slot: slot) { connection throws(RedisError) in
            var replies = try connection.pipeline(bytes: commands)
            if let script, replies.contains(where: Self.isNoScript) {
                _ = try connection.send(["SCRIPT", "LOAD", script.source])
                replies = try connection.pipeline(bytes: commands)
            }
            // A replica or a loading server ran none of the writes: the whole batch goes again.
            if let failover = replies.first(where: { RedisCluster.Redirect($0) == .failover }), case .error(let message) = failover {
                throw .server(message)
            }
            if durable { try self.awaitReplicas(connection) }
            return replies
        }
        for index in replies.indices {
            guard let redirect = RedisCluster.Redirect(replies[index]) else { continue }
            if case .moved(let slot, let address) = redirect { learn(slot: slot, at: address) }
            replies[index] = try await sendOne(commands[index], script: script, durable: durable)
        }
        return replies
    }

    /// One command routed by its key, its error reply returned in place (a redirection followed).
    private func sendOne(_ command: [[UInt8]], script: RedisScript?, durable: Bool) async throws(RedisError) -> RedisValue {
        try await routed(slot: RedisCluster.slot(ofCommand: command)) { connection throws(RedisError) in
            var reply = try connection.pipeline(bytes: [command])[0]
            if let script, Self.isNoScript(reply) {
                _ = try connection.send(["SCRIPT", "LOAD", script.source])
                reply = try connection.pipeline(bytes: [command])[0]
            }
            if case .error(let message) = reply, RedisCluster.Redirect(message) != nil { throw .server(message) }
            if durable { try self.awaitReplicas(connection) }
            return reply
        }
    }

    // MARK: - Routing

    /// Runs `body` on a pool thread with a connection to the server of `slot`, following what the
    /// server redirects or refuses (see the type's documentation).
    private func routed<T: Sendable>(
        slot: Int?, _ body: @escaping @Sendable (RedisConnection) throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        if let slot { cluster.withLockedValue { $0.lastSlot = slot } }
        return try await onPool { () throws(RedisError) -> T in
            let deadline = Date().addingTimeInterval(self.reconnectWindow)
            var slot = slot
            var asking: RedisURL?
            var redirects = 0
            var delay = 0.05
            while true {
                let target = asking ?? self.server(for: slot)
                let clustered = self.isCluster
                let connection: RedisConnection
                do throws(RedisError) {
                    // A cluster node that cannot be reached is tried once, not for the whole window:
                    // one of its replicas may own its slots by now.
                    connection = try self.checkOut(target, deadline: clustered ? Date() : deadline)
                } catch {
                    guard clustered, error.isConnectFailure else { throw error }
                    asking = nil
                    try self.nodeUnreachable(target, slot: slot, error: error, deadline: deadline, delay: &delay)
                    continue
                }
                if asking == nil, self.probeCluster(connection) {
                    // The first connection found a cluster; the slot may live elsewhere. Nothing was
                    // sent yet, so going there (or connecting again) is safe.
                    if connection.isBroken {
                        self.dropIdle(connection.url)
                        continue
                    }
                    if self.server(for: slot) != target {
                        self.checkIn(connection)
                        continue
                    }
                }
                do throws(RedisError) {
                    if asking != nil { _ = try connection.send(["ASKING"]) }
                    let result = try body(connection)
                    self.checkIn(connection)
                    return result
                } catch {
                    let redirect = RedisCluster.Redirect(error)
                    if redirect == .failover { connection.discard() }
                    if connection.isBroken {
                        // Pooled connections usually share the fate of this one (the server
                        // restarted, the network dropped, a failover): drop them all, so the next
                        // calls connect afresh instead of each failing once.
                        self.dropIdle(connection.url)
                    } else {
                        self.checkIn(connection)
                    }
                    asking = nil
                    switch redirect {
                    case .moved(let movedSlot, let address)?:
                        redirects += 1
                        guard redirects <= 5 else { throw error }
                        slot = movedSlot
                        self.learn(slot: movedSlot, at: address)
                        self.refreshSlots(from: [address], deadline: deadline)
                    case .ask(_, let address)?:
                        redirects += 1
                        guard redirects <= 5 else { throw error }
                        asking = self.url.at(address)
                    case .failover?, .later?:
                        guard Date().addingTimeInterval(delay) < deadline else { throw error }
                        Thread.sleep(forTimeInterval: Double.random(in: delay / 2...delay))
                        delay = min(delay * 2, 1)
                    case nil:
                        throw error
                    }
                }
            }
        }
    }

    /// A cluster node did not answer a connect: learns the slots again from the other nodes, and
    /// waits (with backoff and jitter) when they still name it, until a replica has taken over or
    /// the deadline passes (then `error` is thrown).
    private func nodeUnreachable(_ target: RedisURL, slot: Int?, error: RedisError, deadline: Date, delay: inout Double) throws(RedisError) {
        dropIdle(target)
        var avoided: RedisURL.Address?
        if case .tcp(let host, let port) = target.endpoint { avoided = RedisURL.Address(host: host, port: port) }
        let others = cluster.withLockedValue { state -> [RedisURL.Address] in
            guard let map = state.map else { return [] }
            var nodes = map.nodes
            for case let owner? in map.owners where !nodes.contains(owner) { nodes.append(owner) }
            return nodes
        }
        refreshSlots(from: others.filter { $0 != avoided }, deadline: deadline)
        if server(for: slot) != target { return }
        guard Date().addingTimeInterval(delay) < deadline else { throw error }
        Thread.sleep(forTimeInterval: Double.random(in: delay / 2...delay))
        delay = min(delay * 2, 1)
    }

    /// Once per client with a `redis://` URL: asks the first server for `CLUSTER SLOTS`, so routing
    /// by slot (and following a failed primary's replica) works from the start, even when the node
    /// named in the URL owns StreamGate's slot and never answers `MOVED`. True when this call
    /// learnt a map (or broke the connection); a server without cluster support answers an error
    /// and stays a plain server.
    private func probeCluster(_ connection: RedisConnection) -> Bool {
        guard case .tcp(let host, let port) = url.endpoint else { return false }
        let first = cluster.withLockedValue { state in
            defer { state.probed = true }
            return !state.probed && state.map == nil
        }
        guard first else { return false }
        guard let reply = try? connection.send(["CLUSTER", "SLOTS"]) else { return connection.isBroken }
        guard let map = RedisCluster.SlotMap(clusterSlots: reply, answeredBy: RedisURL.Address(host: host, port: port)) else { return false }
        cluster.withLockedValue { $0.map = map }
        return true
    }

    /// Where a command of `slot` goes: its node once the slots are known (a command without a key:
    /// the node of the slot used last, so it does not depend on the seed node), else the URL's server.
    private func server(for slot: Int?) -> RedisURL {
        let address = cluster.withLockedValue { state in (slot ?? state.lastSlot).flatMap { state.map?[$0] } }
        return address.map { url.at($0) } ?? url
    }

    /// Notes one slot's new owner at once (the full map follows from ``refreshSlots(from:deadline:)``).
    private func learn(slot: Int, at address: RedisURL.Address) {
        cluster.withLockedValue { state in
            if state.map == nil { state.map = RedisCluster.SlotMap() }
            state.map![slot] = address
        }
    }

    /// Replaces the slot map with `CLUSTER SLOTS` as the first of `nodes` that answers knows it
    /// (each tried once); keeps the old map when none does (the next failure or `MOVED` tries again).
    private func refreshSlots(from nodes: [RedisURL.Address], deadline: Date) {
        for address in nodes {
            guard let connection = try? checkOut(url.at(address), deadline: min(deadline, Date())) else { continue }
            guard let reply = try? connection.send(["CLUSTER", "SLOTS"]) else {
                if connection.isBroken { dropIdle(connection.url) } else { checkIn(connection) }
                continue
            }
            checkIn(connection)
            if let map = RedisCluster.SlotMap(clusterSlots: reply, answeredBy: address) {
                cluster.withLockedValue { $0.map = map }
                return
            }
        }
    }

    // MARK: - The pool

    private func onPool<T: Sendable>(_ work: @escaping @Sendable () throws(RedisError) -> T) async throws(RedisError) -> T {
        do {
            return try await threads.runIfActive { () throws -> T in try work() }
        } catch let error as RedisError {
            throw error
        } catch {
            throw .connection(endpoint: url.description, reason: "client shut down")
        }
    }

    /// Blocking: an idle connection to `target`, or a new one (retrying with backoff and jitter).
    /// An idle connection the server has closed meanwhile (it died or restarted) is dropped here
    /// rather than failing the command sent on it.
    private func checkOut(_ target: RedisURL, deadline: Date) throws(RedisError) -> RedisConnection {
        let key = target.description
        while let box = idle.withLockedValue({ $0[key]?.popLast() }) {
            if !box.connection.isClosedByPeer { return box.connection }
        }
        var delay = 0.05
        while true {
            do {
                return try RedisConnection(url: target, timeout: timeout)
            } catch {
                guard error.isConnectFailure, Date().addingTimeInterval(delay) < deadline else { throw error }
                Thread.sleep(forTimeInterval: Double.random(in: 0...delay))
                delay = min(delay * 2, 2)
            }
        }
    }

    private func checkIn(_ connection: RedisConnection) {
        idle.withLockedValue { $0[connection.url.description, default: []].append(RedisConnectionBox(connection: connection)) }
    }

    private func dropIdle(_ server: RedisURL) {
        idle.withLockedValue { $0[server.description] = nil }
    }
}

/// What the client knows of a cluster.
private struct ClusterState {
    /// The slots' owners, once a server said it is a cluster node.
    var map: RedisCluster.SlotMap?
    /// The slot of the last command with a key: where keyless commands go.
    var lastSlot: Int?
    /// Whether the first server was asked for `CLUSTER SLOTS` already.
    var probed = false
}

/// A connection parked in the pool; only one thread holds it at a time.
private struct RedisConnectionBox: @unchecked Sendable {
    let connection: RedisConnection
}
