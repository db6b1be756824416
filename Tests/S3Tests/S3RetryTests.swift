import Hummingbird
import NIOCore
import S3
import Synchronization
import Testing
import TestSupport

/// Retries against a server that answers what S3 answers under load (503 `SlowDown`, 500
/// `InternalError`) or not at all: idempotent requests are retried, a bounded number of times;
/// streamed and conditional PUTs never are.
@Suite("S3Client retries")
struct S3RetryTests {
    /// Requests seen, by method and path.
    final class Tally: Sendable {
        private let counts = Mutex<[String: Int]>([:])
        func next(_ name: String) -> Int { counts.withLock { $0[name, default: 0] += 1; return $0[name]! } }
        func count(_ name: String) -> Int { counts.withLock { $0[name] ?? 0 } }
    }

    static let policy = S3RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20))

    private static func error(_ status: HTTPResponse.Status, _ code: String) -> Response {
        let xml = "<?xml version=\"1.0\"?><Error><Code>\(code)</Code><Message>\(code) here</Message><RequestId>r-1</RequestId></Error>"
        return Response(status: status, headers: [.contentType: "application/xml"], body: ResponseBody(byteBuffer: ByteBuffer(string: xml)))
    }

    private func application(_ tally: Tally) -> some ApplicationProtocol {
        let router = Router()
        router.get("/b/{key}") { _, context -> Response in
            let key = context.parameters.get("key") ?? ""
            let attempt = tally.next("GET " + key)
            switch key {
            case "flaky" where attempt <= 2: return Self.error(.serviceUnavailable, "SlowDown")
            case "flaky": return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "ok")))
            case "down": return Self.error(.internalServerError, "InternalError")
            default: return Self.error(.forbidden, "AccessDenied")
            }
        }
        router.put("/b/{key}") { request, context -> Response in
            _ = try await request.body.collect(upTo: 1 << 20)
            _ = tally.next("PUT " + (context.parameters.get("key") ?? ""))
            return Self.error(.serviceUnavailable, "SlowDown")
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    /// A short request timeout: within one request's deadline AsyncHTTPClient itself keeps
    /// reconnecting to a port that refuses, so the deadline bounds each attempt.
    private func client(port: Int) throws -> S3Client {
        let credentials = S3Credentials(accessKeyID: "AK", secretAccessKey: "SK")
        let configuration = try S3Configuration(
            endpoint: "http://127.0.0.1:\(port)", credentials: credentials, retry: Self.policy, requestTimeout: .milliseconds(500)
        )
        return S3Client(configuration: configuration)
    }

    @Test("503 SlowDown twice, then the answer; 500 until the attempts run out; 403 at once")
    func idempotentRetried() async throws {
        let tally = Tally()
        try await withHTTPServer(application(tally)) { port in
            let s3 = try client(port: port)
            #expect(String(buffer: try await s3.getObjectBytes(bucket: "b", key: "flaky", maxBytes: 10)) == "ok")
            #expect(tally.count("GET flaky") == 3)

            let down = await #expect(throws: S3Error.self) { _ = try await s3.getObject(bucket: "b", key: "down") }
            #expect(down?.attempts == 4)
            #expect(down?.code == "InternalError")
            #expect(tally.count("GET down") == 4)
            #expect(down.map { "\($0)" } == "S3 GetObject s3://b/down: HTTP 500 InternalError: InternalError here [request r-1] (after 4 attempts)")

            let denied = await #expect(throws: S3Error.self) { _ = try await s3.getObject(bucket: "b", key: "secret") }
            #expect(denied?.attempts == 1)
            #expect(denied?.status == 403)
        }
    }

    @Test("a PUT from memory is retried; a streamed or conditional PUT is sent once")
    func putsRetriedOnlyWhenSafe() async throws {
        let tally = Tally()
        try await withHTTPServer(application(tally)) { port in
            let s3 = try client(port: port)
            let plain = await #expect(throws: S3Error.self) { try await s3.putObject(bucket: "b", key: "plain", body: ByteBuffer(string: "x")) }
            #expect(plain?.attempts == 4)
            #expect(tally.count("PUT plain") == 4)

            let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
            continuation.yield(ByteBuffer(string: "xy"))
            continuation.finish()
            let streamed = await #expect(throws: S3Error.self) { try await s3.putObject(bucket: "b", key: "streamed", length: 2, body: stream) }
            #expect(streamed?.attempts == 1)
            #expect(tally.count("PUT streamed") == 1)

            let conditional = await #expect(throws: S3Error.self) {
                try await s3.putObject(bucket: "b", key: "conditional", body: ByteBuffer(string: "x"), ifNoneMatch: true)
            }
            #expect(conditional?.attempts == 1)
            #expect(tally.count("PUT conditional") == 1)
        }
    }

    @Test("connection refused: retried, then an error that says no answer came")
    func connectionRefused() async throws {
        let s3 = try client(port: try LoopbackListener.freePort())
        let refused = await #expect(throws: S3Error.self) { _ = try await s3.headObject(bucket: "b", key: "k") }
        #expect(refused?.attempts == 4)
        #expect(refused?.status == nil)
        #expect(refused.map { "\($0)" }?.contains("S3 HeadObject s3://b/k: no answer") == true)
    }
}
