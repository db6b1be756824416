import Foundation
import Jobs
import Redis
import S3
import Store
import TestSupport
import Testing
import Vault

/// `streamgate serve` on a bucket store: a real tus client (tuspy) whose connection is cut
/// midway, and the one-request upload, both end as sealed objects in the bucket that decrypt to
/// the bytes sent, each with one job. Nothing is sealed on the origin's disk.
@Suite("tus through streamgate serve on a bucket", .serialized)
struct TusServeTests {
    static let apiKey = "serve-tus-key-0123456789"

    @Test("tuspy resumes after a dropped connection; the plain POST goes to the bucket too")
    func serveOnBucket() async throws {
        try await withRedis { redis in
            try await withS3 { s3 in
                let folder = try TemporaryFolder()
                let plaintext = (0..<(6 << 20 + 1234)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 11) }
                let file = folder.path + "/clip.bin"
                try Data(plaintext).write(to: URL(fileURLWithPath: file))
                let environment = BucketFarmTests.environment(s3).merging(["STREAMGATE_API_KEYS": Self.apiKey]) { $1 }
                try await withServe(
                    store: "s3://\(s3.bucket)/farm",
                    arguments: ["--s3-endpoint", s3.endpoint, "--redis", redis.urlString, "--upload-expiry", "10m"],
                    environment: environment, log: folder.path + "/serve.log"
                ) { origin in
                    let report = try await runTusDriver([
                        "--endpoint", origin.baseURL, "--key", Self.apiKey, "--file", file, "--chunk-size", String(2 << 20),
                        "--drop-after", String(2 << 20 + 300_000), "--metadata", "profile=fast",
                    ])
                    #expect(report["drops"] as? Int == 1)
                    let jobID = try #require(report["job_id"] as? String, "\(report)")
                    let queue = JobQueue(redis: redis.client())
                    let source = try #require(try await queue.job(jobID)?.spec?.source)
                    #expect(source.hasPrefix("s3://\(s3.bucket)/farm/uploads/") && source.hasSuffix(".sealed"))
                    #expect(try await Self.opened(source, s3: s3, folder: folder.path) == plaintext)

                    let posted = try await origin.request("POST", "/v1/uploads?profile=fast", headers: ["Authorization": "Bearer \(Self.apiKey)"], body: "plain bytes")
                    #expect(posted.status == 202, "\(posted.body)")
                    let answer = try JSONSerialization.jsonObject(with: Data(posted.body.utf8)) as? [String: Any]
                    let plainJob = try #require(answer?["job_id"] as? String)
                    let plainSource = try #require(try await queue.job(plainJob)?.spec?.source)
                    #expect(plainSource.hasPrefix("s3://\(s3.bucket)/farm/uploads/"))
                    #expect(try await Self.opened(plainSource, s3: s3, folder: folder.path) == Array("plain bytes".utf8))
                }
            }
        }
    }

    /// The sealed object's plaintext, through ``SealedSourceReader`` with the serve's master key.
    static func opened(_ source: String, s3: S3ServerProcess, folder: String) async throws -> [UInt8] {
        let key = String(source.dropFirst("s3://\(s3.bucket)/".count))
        let bytes = try await s3.client().getObjectBytes(bucket: s3.bucket, key: key, maxBytes: 64 << 20)
        let path = folder + "/" + UUID().uuidString + ".sealed"
        try Data(bytes.readableBytesView).write(to: URL(fileURLWithPath: path))
        let keyring = Keyring(current: try MasterKey(base64: testMasterKey, source: "test"))
        let reader = try SealedSourceReader(path: path, keyring: keyring)
        var back = [UInt8](repeating: 0, count: reader.size)
        _ = try back.withUnsafeMutableBytes { try reader.read(at: 0, into: $0) }
        return back
    }
}
