import Foundation
import Processes

/// A `redis-server` child process listening only on a Unix socket in a folder of its own: the
/// embedded Redis of `streamgate dev`, and of every test that needs one.
///
/// It is stopped when ``stop()`` is called or the value is released; with `appendOnly` its data
/// survives a ``restart()``.
public final class RedisServerProcess: @unchecked Sendable {
    /// The folder holding the socket, the AOF and the log.
    public let directory: String
    public let appendOnly: Bool
    /// Redis's `maxmemory`, e.g. `512mb`.
    public let maxMemory: String
    public var socketPath: String { directory + "/redis.sock" }
    public var url: RedisURL { RedisURL(endpoint: .unix(path: socketPath)) }
    public var urlString: String { "unix://" + socketPath }
    private var process: ChildProcess?
    private let lock = NSLock()

    /// Starts `redis-server` and waits until it answers PING.
    /// - Parameters:
    ///   - directory: created when missing.
    ///   - executable: found on PATH when nil (Debian installs `/usr/bin/redis-server`).
    ///   - maxMemory: the memory Redis may use; past it only keys with a TTL (nonces, caches,
    ///     finished jobs) are evicted, never jobs in flight or policies, which have none
    ///     (docs/redis.md), as in the shipped redis.conf.
    public init(directory: String, appendOnly: Bool = true, executable: String? = nil, maxMemory: String = "512mb") throws {
        self.directory = directory
        self.appendOnly = appendOnly
        self.maxMemory = maxMemory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try start(executable: executable)
    }

    deinit { stop() }

    public var processIdentifier: Int32? {
        lock.lock(); defer { lock.unlock() }
        return process?.pid
    }

    /// Stops the server (SIGTERM, which makes it flush the AOF) and waits for it to exit.
    public func stop() {
        lock.lock()
        let running = process
        process = nil
        lock.unlock()
        running?.terminate(grace: 10)
    }

    /// Stops and starts again on the same socket and data folder.
    public func restart() throws {
        stop()
        try start(executable: nil)
    }

    private func start(executable: String?) throws {
        try? FileManager.default.removeItem(atPath: socketPath)
        let binary = try executable ?? Self.find("redis-server")
        let child = try ChildProcess(
            executable: binary,
            arguments: [
                "--port", "0",
                "--unixsocket", socketPath,
                "--unixsocketperm", "700",
                "--dir", directory,
                "--save", "",
                "--appendonly", appendOnly ? "yes" : "no",
                "--appendfsync", "everysec",
                "--maxmemory", maxMemory,
                "--maxmemory-policy", "volatile-lru",
                "--logfile", directory + "/redis.log",
                "--daemonize", "no",
            ],
            stdout: .null, stderr: .null,
            // Its own process group: a Ctrl-C at the terminal must not stop Redis before the
            // workers that need it have finished.
            processGroup: true
        )
        lock.lock()
        process = child
        lock.unlock()

        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let connection = try? RedisConnection(url: url, timeout: 1), (try? connection.send(["PING"])) == .status("PONG") {
                return
            }
            if let status = child.exitStatus {
                let log = (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? ""
                throw RedisError.connect(
                    endpoint: urlString,
                    reason: "redis-server \(status): \(log.split(separator: "\n").suffix(3).joined(separator: " | "))"
                )
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        stop()
        throw RedisError.connect(endpoint: urlString, reason: "redis-server did not answer within 10 s")
    }

    static func find(_ program: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
            let candidate = "\(folder)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw RedisError.connect(endpoint: program, reason: "\(program) not found on PATH (Debian: apt-get install redis-server)")
    }
}
