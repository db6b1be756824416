import Foundation
import NIOConcurrencyHelpers
import NIOPosix

/// A pool of blocking hiredis connections behind an async API.
///
/// Every call runs on the client's own thread pool — never on an event loop or Swift's cooperative
/// pool — and the pool has as many connections as threads, so a call never waits for a connection
/// while holding a thread. A connection that fails is dropped; the next call connects again, retrying
/// with exponential backoff and full jitter for up to ``reconnectWindow`` seconds.
///
/// A command in flight when its connection fails is not re-sent (it may have run): the caller gets
/// ``RedisError/connection(endpoint:reason:)`` and decides. Blocking commands (`XREADGROUP … BLOCK`)
/// hold a thread for their whole wait: give them their own client.
public final class RedisClient: Sendable {
    public let url: RedisURL
    /// Seconds a call keeps trying to connect before it fails.
    public let reconnectWindow: Double
    private let timeout: Double
    private let threads: NIOThreadPool
    private let idle = NIOLockedValueBox<[RedisConnectionBox]>([])

    /// - Parameters:
    ///   - connections: threads and connections; calls beyond this wait for a thread.
    ///   - timeout: connect and reply timeout, seconds.
    public init(url: RedisURL, connections: Int = 4, timeout: Double = 5, reconnectWindow: Double = 10) {
        self.url = url
        self.timeout = timeout
        self.reconnectWindow = reconnectWindow
        threads = NIOThreadPool(numberOfThreads: max(1, connections))
        threads.start()
    }

    public convenience init(url: String, connections: Int = 4, timeout: Double = 5, reconnectWindow: Double = 10) throws(RedisError) {
        self.init(url: try RedisURL(url), connections: connections, timeout: timeout, reconnectWindow: reconnectWindow)
    }

    /// Closes every connection and stops the threads.
    public func shutdown() async {
        try? await threads.shutdownGracefully()
        idle.withLockedValue { $0.removeAll() }
    }

    /// Sends one command; an error reply throws ``RedisError/server(_:)``.
    @discardableResult
    public func send(_ arguments: [String]) async throws(RedisError) -> RedisValue {
        try await withConnection { connection throws(RedisError) in try connection.send(arguments) }
    }

    /// Sends one command of binary-safe arguments.
    @discardableResult
    public func send(bytes arguments: [[UInt8]]) async throws(RedisError) -> RedisValue {
        try await withConnection { connection throws(RedisError) in try connection.send(bytes: arguments) }
    }

    /// Sends commands in one round trip; error replies come back in place.
    public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RedisValue] {
        try await withConnection { connection throws(RedisError) in try connection.pipeline(commands) }
    }

    /// Runs `body` with a pooled connection on a pool thread. `body` may send several commands;
    /// it must not keep the connection.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (RedisConnection) throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        do {
            return try await threads.runIfActive { () throws -> T in
                let connection = try self.checkOut()
                do {
                    let result = try body(connection)
                    self.checkIn(connection)
                    return result
                } catch let error as RedisError {
                    if connection.isBroken {
                        // Pooled connections usually share the fate of this one (the server
                        // restarted, the network dropped): drop them all, so the next calls
                        // connect afresh instead of each failing once.
                        self.idle.withLockedValue { $0.removeAll() }
                    } else {
                        self.checkIn(connection)
                    }
                    throw error
                }
            }
        } catch let error as RedisError {
            throw error
        } catch {
            throw .connection(endpoint: url.description, reason: "client shut down")
        }
    }

    /// Blocking: an idle connection, or a new one (retrying with backoff and jitter).
    private func checkOut() throws(RedisError) -> RedisConnection {
        if let box = idle.withLockedValue({ $0.popLast() }) { return box.connection }
        let deadline = Date().addingTimeInterval(reconnectWindow)
        var delay = 0.05
        while true {
            do {
                return try RedisConnection(url: url, timeout: timeout)
            } catch {
                guard error.isConnectFailure, Date().addingTimeInterval(delay) < deadline else { throw error }
                Thread.sleep(forTimeInterval: Double.random(in: 0...delay))
                delay = min(delay * 2, 2)
            }
        }
    }

    private func checkIn(_ connection: RedisConnection) {
        idle.withLockedValue { $0.append(RedisConnectionBox(connection: connection)) }
    }
}

/// A connection parked in the pool; only one thread holds it at a time.
private struct RedisConnectionBox: @unchecked Sendable {
    let connection: RedisConnection
}


extension RedisClient {
    /// Runs a Lua script by its SHA1, loading it when the server does not know it yet (first use,
    /// or after a restart). Arguments are binary-safe.
    public func eval(_ script: RedisScript, keys: [String], arguments: [[UInt8]]) async throws(RedisError) -> RedisValue {
        let argv = [Array(String(keys.count).utf8)] + keys.map { Array($0.utf8) } + arguments
        do {
            return try await send(bytes: [Array("EVALSHA".utf8), Array(script.sha.utf8)] + argv)
        } catch let error where error.serverCode == "NOSCRIPT" {
            return try await send(bytes: [Array("EVAL".utf8), Array(script.source.utf8)] + argv)
        }
    }
}
