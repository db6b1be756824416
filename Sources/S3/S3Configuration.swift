import Foundation

/// Where an S3 service is and how to talk to it.
public struct S3Configuration: Sendable {
    /// How the bucket appears in a request.
    public enum Addressing: Sendable, Equatable {
        /// `https://endpoint/bucket/key`: what SeaweedFS, MinIO and a bucket name with dots need.
        case path
        /// `https://bucket.endpoint/key`: AWS's default.
        case virtualHosted
    }

    /// `http` or `https`.
    public var scheme: String
    /// The endpoint's host, without the bucket.
    public var host: String
    /// nil for the scheme's default port.
    public var port: Int?
    public var region: String
    public var addressing: Addressing
    public var credentials: S3Credentials
    public var retry: S3RetryPolicy
    /// How long one attempt may take until the answer's head arrives (bodies are read after it,
    /// without this deadline). Within it AsyncHTTPClient keeps reconnecting to an address that
    /// refuses, so it also bounds how long an unreachable endpoint is tried before the next attempt.
    public var requestTimeout: Duration
    /// The slowest upload allowed, in bytes a second: a request with a body may take its length
    /// at this rate on top of ``requestTimeout`` (1 MiB/s: a 5 GiB streamed PUT gets 85 minutes).
    public var minimumUploadRate: Int
    /// The largest XML answer read (a listing, a multipart result, an error): larger is refused.
    public var maxXMLBytes: Int
    /// Whether bodies sent from memory are hashed into the signature (else `UNSIGNED-PAYLOAD`, as
    /// streamed bodies always are).
    public var signsPayload: Bool

    public init(
        endpoint: String, region: String = "us-east-1", addressing: Addressing = .path, credentials: S3Credentials,
        retry: S3RetryPolicy = S3RetryPolicy(), requestTimeout: Duration = .seconds(30), minimumUploadRate: Int = 1 << 20,
        maxXMLBytes: Int = 4 << 20, signsPayload: Bool = true
    ) throws(S3ConfigurationError) {
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty, url.path.isEmpty || url.path == "/", url.query == nil
        else { throw .invalidEndpoint(endpoint) }
        self.scheme = scheme
        self.host = host
        self.port = url.port
        self.region = region
        self.addressing = addressing
        self.credentials = credentials
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.minimumUploadRate = minimumUploadRate
        self.maxXMLBytes = maxXMLBytes
        self.signsPayload = signsPayload
    }

    /// From the environment: credentials as ``S3Credentials/resolve(_:)``, `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`, else `us-east-1`), and `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`
    /// (path-style) else AWS's regional endpoint (virtual-hosted).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(S3ConfigurationError) -> S3Configuration {
        let credentials = try S3Credentials.resolve(environment)
        let region = [environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"]].compactMap { $0 }.first { !$0.isEmpty } ?? "us-east-1"
        if let endpoint = [environment["AWS_ENDPOINT_URL_S3"], environment["AWS_ENDPOINT_URL"]].compactMap({ $0 }).first(where: { !$0.isEmpty }) {
            return try S3Configuration(endpoint: endpoint, region: region, addressing: .path, credentials: credentials)
        }
        return try S3Configuration(endpoint: "https://s3.\(region).amazonaws.com", region: region, addressing: .virtualHosted, credentials: credentials)
    }

    /// `host[:port]` of a request for `bucket`, as the `Host` header and the signature carry it.
    func authority(bucket: String?) -> String {
        let base = port.map { "\(host):\($0)" } ?? host
        guard let bucket, addressing == .virtualHosted else { return base }
        return "\(bucket).\(base)"
    }

    /// The encoded path of `key` in `bucket` (either may be nil: a bucket, the service).
    func path(bucket: String?, key: String?) -> String {
        var path = ""
        if let bucket, addressing == .path { path += "/" + S3URIEncoding.encode(bucket) }
        if let key { path += "/" + S3URIEncoding.encodePath(key) }
        return path.isEmpty ? "/" : path
    }
}

/// Bounded retries with jittered exponential backoff ("full jitter": a random wait between zero and
/// `base × 2^attempt`, capped), for answers S3 means to be retried (500, 502, 503 with `SlowDown`,
/// 504) and for connection errors, on idempotent requests only.
public struct S3RetryPolicy: Sendable {
    /// Attempts in all, the first included; 1 turns retries off.
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int = 4, baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(5)) {
        precondition(maxAttempts >= 1, "at least one attempt")
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// How long to wait before attempt `attempt + 1` (`attempt` counting from 1).
    public func delay(after attempt: Int) -> Duration {
        let ceiling = min(maxDelay, baseDelay * (1 << min(attempt - 1, 20)))
        let nanoseconds = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        return .nanoseconds(Int64.random(in: 0...max(0, nanoseconds)))
    }

    /// Whether an answer with `status` (and S3's error code, when its body had one) is worth retrying.
    public static func isRetryable(status: Int, code: String?) -> Bool {
        [500, 502, 503, 504].contains(status) || code == "SlowDown" || code == "InternalError"
    }
}
