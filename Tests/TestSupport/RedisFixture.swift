import Foundation
import Redis
import Processes

/// The redis-server a test asks for: the variants the tests use, and no more.
public struct RedisOptions: Sendable {
    /// The append-only file on (fsync every second): data survives ``RedisFixture/restart()``.
    public var appendOnly: Bool
    /// Redis's `maxmemory`, with `volatile-lru` past it as shipped; a small one tests eviction.
    public var maxMemory: String
    /// Listen on a loopback TCP port and require this password, instead of on a Unix socket
    /// without one: for the tests of `redis://:password@host:port/db` URLs.
    public var password: String?

    public init(appendOnly: Bool = false, maxMemory: String = "512mb", password: String? = nil) {
        self.appendOnly = appendOnly
        self.maxMemory = maxMemory
        self.password = password
    }
}

/// Runs `body` with a redis-server of its own; afterwards, however `body` ended, the clients the
/// fixture handed out are shut down, the server is stopped and its folder removed.
public func withRedis<T>(
    _ options: RedisOptions = RedisOptions(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisFixture) async throws -> T
) async throws -> T {
    // Starting waits (sleeping) for the first PONG: off Swift's pool.
    let redis = try await offPool { try RedisFixture(options) }
    return try await withCleanup { try await body(redis) } cleanup: { await redis.end() }
}

/// A real `redis-server` in a temporary folder: on a Unix socket (``RedisServerProcess``, as
/// `streamgate dev` runs it) or, with a password, on a loopback port.
///
/// Prefer ``withRedis(_:isolation:_:)``. A fixture made with `init` and released without
/// ``end()`` is stopped by its `deinit` — a backstop, which says so on standard error.
public final class RedisFixture: @unchecked Sendable {
    public let options: RedisOptions
    /// The socket, the AOF and the log. Short: Unix socket paths are limited to 107 bytes.
    public let directory: String
    /// The loopback port of a TCP server; nil on a Unix socket.
    public let port: Int?
    /// Where clients connect, with the password if there is one.
    public let url: RedisURL
    /// ``url`` as text, password included: for `--redis` and `STREAMGATE_REDIS_URL`.
    public let urlString: String
    public var socketPath: String { directory + "/redis.sock" }
    /// The running server's pid; nil once stopped.
    public var processIdentifier: Int32? {
        lock.withLock { onSocket?.processIdentifier ?? onPort.flatMap { $0.isRunning ? $0.pid : nil } }
    }

    private let lock = NSLock()
    private var onSocket: RedisServerProcess?
    private var onPort: ChildProcess?
    private let clients = FixtureClients()

    /// Starts the server and waits (blocking) until it answers PING.
    public init(_ options: RedisOptions = RedisOptions()) throws {
        self.options = options
        directory = "/tmp/sg-redis-" + String(UUID().uuidString.prefix(8))
        if let password = options.password {
            let port = try LoopbackListener.freePort()
            self.port = port
            url = RedisURL(endpoint: .tcp(host: "127.0.0.1", port: port), password: password)
            urlString = "redis://:\(password)@127.0.0.1:\(port)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            do {
                onPort = try startOnPort()
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
        } else {
            port = nil
            url = RedisURL(endpoint: .unix(path: directory + "/redis.sock"))
            urlString = "unix://" + directory + "/redis.sock"
            do {
                onSocket = try RedisServerProcess(directory: directory, appendOnly: options.appendOnly, maxMemory: options.maxMemory)
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
        }
    }

    deinit {
        guard let clients = clients.end() else { return }
        FileHandle.standardError.write(Data("redis-server in \(directory) outlived its test: stopped by RedisFixture.deinit\n".utf8))
        Task { for client in clients { await client.shutdown() } }
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A client of this server, shut down when the fixture ends. `url` overrides the fixture's
    /// (another database, a wrong password); `waitReplicas` is ``RedisClient/waitReplicas``.
    public func client(
        url: RedisURL? = nil, connections: Int = 2, timeout: Double = 5, reconnectWindow: Double = 10, waitReplicas: Int = 0, waitTimeout: Double = 1
    ) -> RedisClient {
        let client = RedisClient(
            url: url ?? self.url, connections: connections, timeout: timeout, reconnectWindow: reconnectWindow, waitReplicas: waitReplicas,
            waitTimeout: waitTimeout
        )
        return clients.keep(client)
    }

    /// Stops the server (SIGTERM, which flushes the AOF) and waits for it: Redis down, mid-test.
    public func stop() {
        let (socket, tcp) = lock.withLock { () -> (RedisServerProcess?, ChildProcess?) in
            defer { onPort = nil }
            return (onSocket, onPort)
        }
        socket?.stop()
        tcp?.terminate(grace: 10)
    }

    /// Stops and starts again on the same socket or port and data folder.
    public func restart() throws {
        if let socket = lock.withLock({ onSocket }) {
            try socket.restart()
        } else {
            stop()
            let started = try startOnPort()
            lock.withLock { onPort = started }
        }
    }

    /// Shuts the clients down, stops the server and removes its folder; ``withRedis(_:isolation:_:)``
    /// calls it. Only the first call does anything.
    public func end() async {
        guard await clients.shutDown() else { return }
        // Stopping waits for the process to exit: off Swift's pool.
        _ = try? await offPool { [self] in
            stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func startOnPort() throws -> ChildProcess {
        guard let port, let password = options.password else { preconditionFailure("not a TCP server") }
        return try LoopbackRedis.start(port: port, directory: directory, arguments: [
            "--requirepass", password, "--save", "", "--appendonly", options.appendOnly ? "yes" : "no", "--appendfsync", "everysec",
            "--maxmemory", options.maxMemory, "--maxmemory-policy", "volatile-lru",
        ], url: url)
    }
}
