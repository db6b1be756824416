import Foundation
import Redis
import Processes

/// A `redis-server` on a loopback TCP port, for the fixtures that need several servers (a replica,
/// sentinels, a cluster): started with `arguments` after the port, bind address and folder, and
/// returned once it answers PING. A server that exits or stays silent for 10 s is an error naming
/// the end of its log.
enum LoopbackRedis {
    static func executable() -> String {
        ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/redis-server"
    }

    /// - Parameters:
    ///   - configFile: written first and given as the first argument (sentinels need a config file
    ///     they can rewrite).
    ///   - url: what to PING; the plain port when nil.
    static func start(
        port: Int, directory: String, arguments: [String], configFile: String? = nil, url: RedisURL? = nil
    ) throws -> ChildProcess {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var head: [String] = []
        if let configFile {
            let path = directory + "/redis.conf"
            try configFile.write(toFile: path, atomically: true, encoding: .utf8)
            head = [path]
        }
        let log = directory + "/redis.log"
        let server = try ChildProcess(
            executable: executable(),
            arguments: head + [
                "--port", String(port), "--bind", "127.0.0.1", "--dir", directory, "--logfile", log, "--daemonize", "no",
            ] + arguments,
            stdout: .null, stderr: .null
        )
        let ping = url ?? RedisURL(endpoint: .tcp(host: "127.0.0.1", port: port))
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let connection = try? RedisConnection(url: ping, timeout: 1), (try? connection.send(["PING"])) == .status("PONG") {
                return server
            }
            if let status = server.exitStatus {
                let tail = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
                throw RedisError.connect(endpoint: "127.0.0.1:\(port)", reason: "redis-server \(status): \(tail)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        server.terminate(grace: 5)
        throw RedisError.connect(endpoint: "127.0.0.1:\(port)", reason: "redis-server did not answer within 10 s")
    }

    /// Polls `condition` (blocking) every 50 ms until it holds; throws `what` when `seconds` pass.
    static func wait(_ what: String, seconds: Double, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            guard Date() < deadline else { throw RedisError.connect(endpoint: "fixture", reason: "\(what) did not happen within \(Int(seconds)) s") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// One command on a fresh connection to 127.0.0.1:`port`; nil when anything fails.
    static func ask(_ port: Int, _ command: [String]) -> RedisValue? {
        guard let connection = try? RedisConnection(url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: port)), timeout: 1) else { return nil }
        return try? connection.send(command)
    }
}

/// The clients a fixture handed out: shut down once, when the fixture ends.
final class FixtureClients: @unchecked Sendable {
    private let lock = NSLock()
    private var clients: [RedisClient] = []
    private var ended = false

    func keep(_ client: RedisClient) -> RedisClient {
        lock.withLock {
            precondition(!ended, "a client of a fixture that has ended")
            clients.append(client)
        }
        return client
    }

    /// Marks the fixture ended; the clients to shut down, or nil when it had ended already.
    func end() -> [RedisClient]? {
        lock.withLock {
            if ended { return nil }
            ended = true
            return clients
        }
    }

    /// Ends the fixture and shuts its clients down; false when it had ended already.
    func shutDown() async -> Bool {
        guard let clients = end() else { return false }
        for client in clients { await client.shutdown() }
        return true
    }
}

/// What a fixture of several servers owns: its processes (by port), the clients it handed out and
/// its folder; ended once, by ``end()`` or, as a backstop that says so, by `deinit`.
final class LoopbackRedisGroup: @unchecked Sendable {
    let directory: String
    let clients = FixtureClients()
    private let lock = NSLock()
    private var processes: [Int: ChildProcess] = [:]

    init(directory: String) {
        self.directory = directory
    }

    deinit {
        guard clients.end() != nil else { return }
        FileHandle.standardError.write(Data("redis servers in \(directory) outlived their test: stopped by deinit\n".utf8))
        stopAll()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts a server (``LoopbackRedis/start(port:directory:arguments:configFile:url:)``) in a
    /// folder `name` of the group's and keeps it.
    func start(_ name: String, port: Int, arguments: [String], configFile: String? = nil) throws {
        let process = try LoopbackRedis.start(port: port, directory: "\(directory)/\(name)", arguments: arguments, configFile: configFile)
        lock.withLock { processes[port] = process }
    }

    /// Takes the process on `port` out of the group (its caller ends it).
    func remove(port: Int) -> ChildProcess? {
        lock.withLock { processes.removeValue(forKey: port) }
    }

    func keep(_ client: RedisClient) -> RedisClient { clients.keep(client) }

    /// The pids of the processes still kept.
    var processIdentifiers: [Int32] { lock.withLock { processes.values.map(\.pid) } }

    /// Shuts the clients down, stops every process and removes the folder; only the first call acts.
    func end() async {
        guard await clients.shutDown() else { return }
        // Stopping waits for the processes to exit: off Swift's pool.
        _ = try? await offPool { [self] in
            stopAll()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Runs `setUp`; when it throws, stops what it started and removes the folder first.
    func setUp(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            _ = clients.end()
            stopAll()
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    private func stopAll() {
        let all = lock.withLock { () -> [ChildProcess] in
            defer { processes.removeAll() }
            return Array(processes.values)
        }
        for process in all { process.signal(SIGTERM) }
        for process in all { process.terminate(grace: 5) }
    }
}
