import Foundation
import HTTPTypes
import Hummingbird
import Jobs
import NIOCore
import Origin
import S3
import Store
import Testing
import TestSupport
import Vault

/// Resumable and plain uploads into a SeaweedFS bucket through two origins sharing it and Redis,
/// and a real tus client (tuspy) whose connection is cut midway, resuming on the other origin.
@Suite("tus uploads in a bucket", .serialized)
struct TusBucketTests {
    @Test("a dropped PATCH leaves a durable offset; a second origin resumes it; a concurrent PATCH is locked out; the job is enqueued once")
    func resumeOnAnotherOrigin() async throws {
        try await withTusFixture(bucket: true) { fixture in
            let plaintext = tusPlaintext(8 << 20 + 777, seed: 11)
            try await withOrigin(fixture.application()) { first in
                try await withOrigin(fixture.application()) { second in
                    let location = try await fixture.create(first.client, length: plaintext.count, metadata: ["profile": "fast", "keep_source": "true"])
                    // 6 MiB of a PATCH announcing everything, then the connection dies: one part
                    // (5 MiB) and a sealed tail must be stored and counted.
                    let sent = 6 << 20 + 123
                    let dying = try TusRawConnection(port: first.port)
                    try dying.patch(location, offset: 0, announced: plaintext.count, plaintext[0..<sent])
                    try await Task.sleep(for: .milliseconds(300))
                    dying.drop()
                    var offset = 0
                    #expect(try await eventually {
                        offset = try await fixture.head(second.client, location).1 ?? -1
                        return offset == sent
                    }, "the second origin reports the bytes the first stored (offset \(offset))")
                    let names = try await fixture.storedUploadNames()
                    #expect(names.count == 1 && names[0].contains(".tail-"), "the tail is stored, the multipart upload is not an object yet: \(names)")

                    // A PATCH holding the lock on the first origin (head and a few bytes, then silence)
                    // locks a PATCH on the second out.
                    let uploadID = String(location.split(separator: "/").last!)
                    func locked() async throws -> Bool { try await fixture.queue.redis.send(["EXISTS", fixture.queue.keys.uploadLock(uploadID)]).int == 1 }
                    #expect(try await eventually { try await !locked() }, "the dropped PATCH released the upload")
                    let holder = try TusRawConnection(port: first.port)
                    try holder.patch(location, offset: offset, announced: 10, plaintext[offset..<(offset + 5)])
                    #expect(try await eventually { try await locked() }, "the holder took the upload")
                    let (locked, _, _) = try await fixture.send(second.client, location, offset: offset, plaintext[offset..<(offset + 10)])
                    #expect(locked.code == 423)
                    holder.drop()
                    #expect(try await eventually { try await fixture.head(second.client, location).1 == offset + 5 })
                    offset += 5

                    let (status, end, job) = try await fixture.send(second.client, location, offset: offset, plaintext[offset...])
                    #expect(status == .noContent && end == plaintext.count)
                    let jobID = try #require(job)
                    let (_, _, jobAgain) = try await fixture.head(first.client, location)
                    #expect(jobAgain == jobID)
                    let spec = try #require(try await fixture.queue.job(jobID)?.spec)
                    #expect(spec.source == "s3://\(fixture.s3!.bucket)/sg/uploads/\(uploadID).sealed")
                    #expect(try await fixture.plaintext(ofSource: spec.source!) == plaintext)
                    #expect(try await fixture.jobCount() == 1)
                    #expect(try await fixture.storedUploadNames() == ["sg/uploads/\(uploadID).sealed"], "the tails are removed")
                }
            }
        }
    }

    @Test("termination aborts the bucket's multipart upload")
    func terminationAbortsParts() async throws {
        try await withTusFixture(bucket: true) { fixture in
            let plaintext = tusPlaintext(6 << 20, seed: 13)
            try await withOrigin(fixture.application()) { origin in
                let location = try await fixture.create(origin.client, length: plaintext.count + 100)
                #expect(try await fixture.send(origin.client, location, offset: 0, plaintext[...]).0 == .noContent)
                let uploadID = String(location.split(separator: "/").last!)
                let handle = try #require(try await fixture.queue.redis.send(["HGET", fixture.queue.keys.upload(uploadID), "handle"]).text)
                try await origin.client.execute(uri: location, method: .delete, headers: fixture.auth) { response in
                    #expect(response.status == .noContent)
                }
                #expect(try await fixture.storedUploadNames().isEmpty)
                let s3 = try #require(fixture.s3)
                await #expect(throws: S3Error.self, "the multipart upload is gone") {
                    try await s3.client().uploadPart(bucket: s3.bucket, key: "sg/uploads/\(uploadID).sealed", uploadID: handle, partNumber: 2, body: ByteBuffer(bytes: [1]))
                }
            }
        }
    }

    @Test("the one-request POST stores its sealed upload in the bucket, as a multipart upload")
    func plainPostIntoBucket() async throws {
        try await withTusFixture(bucket: true) { fixture in
            let plaintext = tusPlaintext(7 << 20 + 3, seed: 17)
            try await withOrigin(fixture.application()) { origin in
                let jobID = try await origin.client.execute(
                    uri: "/v1/uploads?profile=fast", method: .post, headers: [.authorization: "Bearer \(TusFixture.key)"], body: ByteBuffer(bytes: plaintext)
                ) { response in
                    #expect(response.status == .accepted, "\(String(buffer: response.body))")
                    return try #require((try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])?["job_id"] as? String)
                }
                let source = try #require(try await fixture.queue.job(jobID)?.spec?.source)
                #expect(source.hasPrefix("s3://\(fixture.s3!.bucket)/sg/uploads/"))
                #expect(try await fixture.plaintext(ofSource: source) == plaintext)
                #expect(!FileManager.default.fileExists(atPath: fixture.folder + "/unused"), "nothing on the origin's disk")
            }
        }
    }

    @Test("tuspy, a real tus client, loses its connection midway and resumes on another origin from the server's offset")
    func realClientResumes() async throws {
        try await withTusFixture(bucket: true) { fixture in
            let plaintext = tusPlaintext(7 << 20 + 4321, seed: 19)
            try FileManager.default.createDirectory(atPath: fixture.folder, withIntermediateDirectories: true)
            let file = fixture.folder + "/clip.bin"
            try Data(plaintext).write(to: URL(fileURLWithPath: file))
            try await withOrigin(fixture.application()) { first in
                try await withOrigin(fixture.application()) { second in
                    let report = try await runTusDriver([
                        "--endpoint", first.baseURL, "--resume-endpoint", second.baseURL, "--key", TusFixture.key, "--file", file,
                        "--chunk-size", String(2 << 20), "--drop-after", String(3 << 20 + 5000), "--metadata", "profile=fast",
                        "--metadata", "asset_id=tuspy",
                    ])
                    #expect(report["drops"] as? Int == 1)
                    let resumedFrom = report["resumed_from"] as? [Int] ?? []
                    #expect(!resumedFrom.isEmpty && resumedFrom.allSatisfy { $0 > 0 && $0 < plaintext.count }, "resumed midway: \(resumedFrom)")
                    let jobID = try #require(report["job_id"] as? String, "\(report)")
                    let spec = try #require(try await fixture.queue.job(jobID)?.spec)
                    #expect(spec.assetID == "tuspy")
                    #expect(try await fixture.plaintext(ofSource: spec.source!) == plaintext)
                    #expect(try await fixture.jobCount() == 1)
                }
            }
        }
    }
}
