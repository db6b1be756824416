import Foundation
import S3
import Testing

@Suite("S3 configuration: credentials, endpoints, addressing, backoff")
struct S3ConfigurationTests {
    @Test("credentials from the environment, else from a shared credentials file and profile")
    func credentials() throws {
        let fromEnvironment = S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "T"])
        #expect(fromEnvironment == S3Credentials(accessKeyID: "AK", secretAccessKey: "SK", sessionToken: "T"))
        #expect(S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AK"]) == nil)

        let file = NSTemporaryDirectory() + "sg-s3-credentials-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data("""
            # comment
            [default]
            aws_access_key_id = DEFAULTKEY
            aws_secret_access_key=default/secret+
            [media]
            aws_access_key_id = MEDIAKEY
            aws_secret_access_key = media-secret
            aws_session_token = tok
            """.utf8).write(to: URL(fileURLWithPath: file))
        #expect(try S3Credentials.fromFile(file) == S3Credentials(accessKeyID: "DEFAULTKEY", secretAccessKey: "default/secret+"))
        let resolved = try S3Credentials.resolve(["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "media"])
        #expect(resolved == S3Credentials(accessKeyID: "MEDIAKEY", secretAccessKey: "media-secret", sessionToken: "tok"))
        #expect(throws: S3ConfigurationError.self) { try S3Credentials.fromFile(file, profile: "none") }
        #expect(throws: S3ConfigurationError.self) { try S3Credentials.resolve(["AWS_SHARED_CREDENTIALS_FILE": file + "-missing"]) }
    }

    @Test("the region and endpoint from the environment; us-east-1 and AWS by default")
    func environment() throws {
        let keys = ["AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"]
        let aws = try S3Configuration.fromEnvironment(keys)
        #expect(aws.region == "us-east-1")
        #expect(aws.host == "s3.us-east-1.amazonaws.com")
        #expect(aws.addressing == .virtualHosted)
        let local = try S3Configuration.fromEnvironment(keys.merging(["AWS_REGION": "eu-west-3", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"]) { $1 })
        #expect(local.region == "eu-west-3")
        #expect(local.host == "127.0.0.1" && local.port == 9000 && local.scheme == "http")
        #expect(local.addressing == .path)
        let credentials = S3Credentials(accessKeyID: "AK", secretAccessKey: "SK")
        for bad in ["ftp://x", "http://", "http://host/path", "http://host/?q=1", "not a url"] {
            #expect(throws: S3ConfigurationError.self, "\(bad)") { try S3Configuration(endpoint: bad, credentials: credentials) }
        }
    }

    @Test("presigned URLs: path-style and virtual-hosted, keys encoded as signed")
    func addressing() throws {
        let credentials = S3Credentials(accessKeyID: "AK", secretAccessKey: "SK")
        let fixed: @Sendable () -> Date = { Date(timeIntervalSince1970: 1_369_353_600) }
        let path = S3Client(configuration: try S3Configuration(endpoint: "http://127.0.0.1:9000", credentials: credentials), clock: fixed)
        #expect(path.presignedURL(bucket: "media", key: "a b/c+d.ts", expires: 60)
            .hasPrefix("http://127.0.0.1:9000/media/a%20b/c%2Bd.ts?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature="))
        let virtual = S3Client(configuration: try S3Configuration(endpoint: "https://s3.amazonaws.com", addressing: .virtualHosted, credentials: credentials), clock: fixed)
        #expect(virtual.presignedURL(bucket: "media", key: "k", expires: 60).hasPrefix("https://media.s3.amazonaws.com/k?"))
    }

    @Test("backoff: full jitter under a doubling, capped ceiling; what is retried")
    func backoff() {
        let policy = S3RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(100), maxDelay: .milliseconds(250))
        for _ in 0..<50 {
            #expect(policy.delay(after: 1) <= .milliseconds(100))
            #expect(policy.delay(after: 2) <= .milliseconds(200))
            #expect(policy.delay(after: 9) <= .milliseconds(250))
        }
        #expect(S3RetryPolicy.isRetryable(status: 503, code: "SlowDown"))
        #expect(S3RetryPolicy.isRetryable(status: 500, code: nil))
        #expect(!S3RetryPolicy.isRetryable(status: 403, code: "SignatureDoesNotMatch"))
        #expect(!S3RetryPolicy.isRetryable(status: 404, code: "NoSuchKey"))
    }
}
