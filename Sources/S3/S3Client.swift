import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Vault

/// An S3 client on AsyncHTTPClient: objects (put, get whole or ranged and streamed, head, delete),
/// listings, multipart uploads and presigned URLs, every request signed with Signature Version 4.
///
/// Requests S3 may safely repeat (GET, HEAD, DELETE, PUT of a body in memory, a part) are retried
/// on 500, 502, 503 (`SlowDown`), 504 and connection errors, a bounded number of times with jittered
/// exponential backoff (``S3RetryPolicy``); a streamed body, a conditional PUT and the multipart
/// POSTs are sent once. Every failure is an ``S3Error`` naming the operation, bucket, key, status
/// and S3's own code and message.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    let httpClient: HTTPClient
    let signer: SigV4Signer
    let clock: @Sendable () -> Date

    /// The HTTP client every S3Client shares unless given another, for the life of the process:
    /// up to 256 connections to one endpoint (AsyncHTTPClient's default of 8 would queue an
    /// origin's concurrent misses behind each other), and redirects never followed (an answer
    /// that points elsewhere is an error, not a place to send signed requests).
    public static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        // AsyncHTTPClient would otherwise trace every store read as a trace of its own.
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// - Parameters:
    ///   - httpClient: the caller's (and the caller shuts it down); ``sharedHTTPClient`` by default.
    ///   - clock: the signing time (tests pin it).
    public init(configuration: S3Configuration, httpClient: HTTPClient = S3Client.sharedHTTPClient, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region)
        self.clock = clock
    }

    /// One S3 request before it is signed.
    struct Operation: Sendable {
        enum Body: Sendable {
            case none
            case bytes(ByteBuffer)
            case stream(HTTPClientRequest.Body, length: Int64)
        }

        var name: String
        var method: HTTPMethod
        var bucket: String
        var key: String?
        var query: [(name: String, value: String)] = []
        var headers: [(name: String, value: String)] = []
        var body: Body = .none
        /// Whether sending it twice does what sending it once does.
        var idempotent: Bool
        /// The statuses that are an answer rather than an error.
        var accepted: @Sendable (Int) -> Bool = { (200..<300).contains($0) }
    }

    /// Sends `operation`, retrying as the policy allows, and returns the first accepted answer
    /// (its body still to be read). Throws ``S3Error`` (or `CancellationError`).
    func send(_ operation: Operation) async throws -> HTTPClientResponse {
        let policy = configuration.retry
        let retries = operation.idempotent && !operation.isStreamed
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPClientResponse
            do {
                // AsyncHTTPClient's deadline covers the request up to the answer's head (the body
                // sent, not the body answered): an upload gets time for its bytes too.
                response = try await httpClient.execute(request(for: operation), deadline: .now() + TimeAmount(timeout(for: operation)))
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                if retries && attempt < policy.maxAttempts {
                    try await Task.sleep(for: policy.delay(after: attempt))
                    continue
                }
                throw S3Error(operation: operation.name, bucket: operation.bucket, key: operation.key, reason: .transport(String(describing: error)), attempts: attempt)
            }
            let status = Int(response.status.code)
            if operation.accepted(status) { return response }
            let reason = await errorReason(response, method: operation.method)
            if retries && attempt < policy.maxAttempts, case .status(_, let code, _, _) = reason, S3RetryPolicy.isRetryable(status: status, code: code) {
                try await Task.sleep(for: policy.delay(after: attempt))
                continue
            }
            throw S3Error(operation: operation.name, bucket: operation.bucket, key: operation.key, reason: reason, attempts: attempt)
        }
    }

    /// Sends `operation` and reads its whole answer (bounded by the XML limit): for answers that are XML.
    func sendForBody(_ operation: Operation) async throws -> (HTTPClientResponse, ByteBuffer) {
        let response = try await send(operation)
        do {
            return (response, try await response.body.collect(upTo: configuration.maxXMLBytes))
        } catch is NIOTooManyBytesError {
            throw failure(operation, .tooLarge(limit: configuration.maxXMLBytes))
        } catch {
            throw failure(operation, .transport("reading the answer: \(error)"))
        }
    }

    /// The request timeout, plus the time the body takes at ``S3Configuration/minimumUploadRate``.
    func timeout(for operation: Operation) -> Duration {
        let length: Int64
        switch operation.body {
        case .none: length = 0
        case .bytes(let buffer): length = Int64(buffer.readableBytes)
        case .stream(_, let streamed): length = streamed
        }
        return configuration.requestTimeout + .milliseconds(length * 1000 / Int64(max(1, configuration.minimumUploadRate)))
    }

    func failure(_ operation: Operation, _ reason: S3Error.Reason) -> S3Error {
        S3Error(operation: operation.name, bucket: operation.bucket, key: operation.key, reason: reason)
    }

    /// The signed request: URL, `host`, the operation's headers, the signature's.
    func request(for operation: Operation) -> HTTPClientRequest {
        let authority = configuration.authority(bucket: operation.bucket)
        let path = configuration.path(bucket: operation.bucket, key: operation.key)
        var headers = [(name: "host", value: authority)] + operation.headers
        let payloadHash: String
        var request = HTTPClientRequest(url: url(authority: authority, path: path, query: operation.query))
        request.method = operation.method
        switch operation.body {
        case .none:
            payloadHash = SigV4Signer.emptyPayloadHash
        case .bytes(let buffer):
            payloadHash = configuration.signsPayload ? Digest.hex(Digest.sha256(Array(buffer.readableBytesView))) : SigV4Signer.unsignedPayload
            request.body = .bytes(buffer)
        case .stream(let body, _):
            payloadHash = SigV4Signer.unsignedPayload
            request.body = body
        }
        let signed = signer.sign(
            SigV4Signer.Request(method: operation.method.rawValue, path: path, query: operation.query, headers: headers, payloadHash: payloadHash),
            at: clock()
        )
        headers += signed.headers
        for header in headers { request.headers.add(name: header.name, value: header.value) }
        return request
    }

    func url(authority: String, path: String, query: [(name: String, value: String)]) -> String {
        let queryText = query.map { S3URIEncoding.encode($0.name) + "=" + S3URIEncoding.encode($0.value) }.joined(separator: "&")
        return "\(configuration.scheme)://\(authority)\(path)" + (queryText.isEmpty ? "" : "?" + queryText)
    }

    /// The status and what the `<Error>` body (if any, bounded) says; the request id from the
    /// header when the body has none.
    private func errorReason(_ response: HTTPClientResponse, method: HTTPMethod) async -> S3Error.Reason {
        let status = Int(response.status.code)
        let headerRequestID = response.headers.first(name: "x-amz-request-id")
        guard method != .HEAD, let body = try? await response.body.collect(upTo: min(configuration.maxXMLBytes, 1 << 20)) else {
            return .status(status, code: nil, message: nil, requestID: headerRequestID)
        }
        do {
            let parsed = try S3ErrorBody.parse(body.readableBytesView)
            return .status(status, code: parsed?.code, message: parsed?.message, requestID: parsed?.requestID ?? headerRequestID)
        } catch {
            return .status(status, code: nil, message: "error body unreadable: \(error)", requestID: headerRequestID)
        }
    }

    /// A presigned URL for `method` on `key`: anyone holding it may make that one request until it
    /// expires (`expires` seconds, at most 7 days). Only `host` is signed.
    public func presignedURL(method: HTTPMethod = .GET, bucket: String, key: String, expires: Int) -> String {
        let authority = configuration.authority(bucket: bucket)
        let path = configuration.path(bucket: bucket, key: key)
        let query = signer.presignedQuery(
            SigV4Signer.Request(method: method.rawValue, path: path, headers: [("host", authority)], payloadHash: SigV4Signer.unsignedPayload),
            at: clock(), expires: expires
        )
        return url(authority: authority, path: path, query: query)
    }
}

extension S3Client.Operation {
    var isStreamed: Bool {
        if case .stream = body { return true }
        return false
    }
}
