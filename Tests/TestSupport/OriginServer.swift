import Foundation
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import Logging
import Origin
import Processes

extension ConnectionLimits {
    /// The production caps with deadlines no test reaches, however loaded the machine: a test's
    /// client may sit on a connection for a while between two requests. The deadlines themselves
    /// are tested with tight limits (`HostileClientTests`).
    public static let unhurried = ConnectionLimits(idleTimeout: .seconds(600), headerTimeout: .seconds(600))
}

/// The origin's server application as the tests build it: on 127.0.0.1, on a port the kernel
/// picks, with ``ConnectionLimits/unhurried`` unless a test tightens them.
public func originApplication(
    routes: OriginRoutes, api: JobAPI? = nil, health: HealthRoutes, connections: ConnectionLimits = .unhurried, logger: Logger
) -> OriginApplication {
    buildServerApplication(
        configuration: OriginConfiguration(host: "127.0.0.1", port: 0, connections: connections),
        origin: routes, api: api, health: health, logger: logger
    )
}

/// An origin listening on 127.0.0.1 for the length of one `withOrigin` call: an application in
/// this process, or a `streamgate serve` child process.
public final class OriginServer: Sendable {
    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// The `streamgate serve` process; nil for an origin in this process.
    public let process: ChildProcess?
    private let inProcessClient: OriginClient?

    /// One keep-alive HTTP/1.1 connection to an origin in this process. A `streamgate serve`
    /// origin has none: tests talk to it with real clients (curl).
    public var client: OriginClient {
        guard let inProcessClient else { preconditionFailure("a streamgate serve origin has no in-process client") }
        return inProcessClient
    }

    init(port: Int, client: OriginClient?, process: ChildProcess?) {
        self.port = port
        inProcessClient = client
        self.process = process
    }

    /// Sends SIGTERM to a `streamgate serve` origin: whether it exited within `seconds`. (An
    /// origin in this process stops only when its `withOrigin` call ends.)
    public func stop(within seconds: Double) async -> Bool {
        guard let process else { return false }
        process.signal(SIGTERM)
        return await process.exited(timeout: seconds) != nil
    }
}

/// Serves `application` on a real socket (a port the kernel picks) for the length of `body`, then
/// shuts it down gracefully, whatever `body` did.
public func withOrigin<T: Sendable>(
    _ application: OriginApplication, _ body: @Sendable (OriginServer) async throws -> T
) async throws -> T {
    var application = application
    let (ports, announce) = AsyncStream.makeStream(of: Int.self)
    application.onRunning = { announce.yield($0) }
    let server = ServiceGroup(configuration: .init(services: [application], logger: Logger(label: "test.origin.server")))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask {
            defer { announce.finish() }
            try await server.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await tasks.next()
            throw OriginServerError("the origin stopped before it listened")
        }
        let client = OriginClient(port: port)
        let outcome: Result<T, any Error>
        do {
            outcome = .success(try await body(OriginServer(port: port, client: client, process: nil)))
        } catch {
            outcome = .failure(error)
        }
        await client.shutdown()
        await server.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return try outcome.get()
    }
}

/// Serves any Hummingbird `application` (a scripted peer, such as a misbehaving S3 endpoint) on a
/// kernel-chosen port for the length of `body`, through HummingbirdTesting's live server.
public func withHTTPServer<T>(
    _ application: some ApplicationProtocol, _ body: @Sendable (_ port: Int) async throws -> T
) async throws -> T {
    // The closure given to the live server never throws: a throw there cancels the server in the
    // middle of its graceful shutdown, and NIO traps on a connection cancelled as it is accepted.
    let outcome = try await application.test(.live) { client -> Result<T, any Error> in
        do {
            guard let port = client.port else { throw OriginServerError("the live test client has no port") }
            return .success(try await body(port))
        } catch {
            return .failure(error)
        }
    }
    return try outcome.get()
}

/// One keep-alive HTTP/1.1 connection to an origin in this process (HummingbirdTesting's client).
/// It connects on its first request: a test that never uses it holds no connection.
public struct OriginClient: Sendable {
    let port: Int
    private let made = NIOLockedValueBox<TestClient?>(nil)

    init(port: Int) {
        self.port = port
    }

    /// Sends one request and gives its response to `check`.
    @discardableResult
    public func execute<T>(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil,
        _ check: (OriginResponse) async throws -> T
    ) async throws -> T {
        let client = made.withLockedValue { made -> TestClient in
            if let made { return made }
            let client = TestClient(host: "localhost", port: port)
            client.connect()
            made = client
            return client
        }
        var headers = headers
        headers[.connection] = headers[.connection] ?? "keep-alive"
        let response = try await client.execute(TestClient.Request(uri, method: method, authority: "localhost", headers: headers, body: body))
        return try await check(OriginResponse(head: response.head, body: response.body ?? ByteBuffer()))
    }

    func shutdown() async {
        guard let client = made.withLockedValue({ $0 }) else { return }
        try? await client.shutdown()
    }
}

/// A response as ``OriginClient`` read it.
public struct OriginResponse: Sendable {
    public let head: HTTPResponse
    public let body: ByteBuffer
    public var status: HTTPResponse.Status { head.status }
    public var headers: HTTPFields { head.headerFields }
}

/// Runs `executable serve --store STORE --port P ARGUMENTS` on a free port for the length of
/// `body`, ready once the port accepts connections. Afterwards, whatever `body` did, the server
/// gets SIGTERM, and SIGKILL if it has not exited 10 s later (said on standard error).
public func withOrigin<T>(
    serving executable: String, store: String, port chosen: Int? = nil, arguments: [String] = [], environment: [String: String],
    log: String? = nil, isolation: isolated (any Actor)? = #isolation, _ body: (OriginServer) async throws -> T
) async throws -> T {
    let port = try chosen ?? LoopbackListener.freePort()
    let process = try ChildProcess(
        executable: executable, arguments: ["serve", "--store", store, "--port", String(port)] + arguments,
        environment: environment, stdout: .null, stderr: log.map { .file($0) } ?? .null
    )
    let server = OriginServer(port: port, client: nil, process: process)
    return try await withCleanup {
        let deadline = Date().addingTimeInterval(30)
        while !LoopbackListener.canConnect(port: port) {
            if let status = process.exitStatus { throw OriginServerError("streamgate serve \(status)") }
            guard Date() < deadline else { throw OriginServerError("streamgate serve did not open port \(port)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await body(server)
    } cleanup: {
        process.signal(SIGTERM)
        if await process.exited(timeout: 10) == nil {
            FileHandle.standardError.write(Data("streamgate serve on port \(port) did not exit within 10 s of SIGTERM; killed\n".utf8))
            process.signal(SIGKILL)
            _ = await process.exited()
        }
    }
}

public struct OriginServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
