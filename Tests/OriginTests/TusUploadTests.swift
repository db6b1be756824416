import Foundation
import HTTPTypes
import Hummingbird
import Jobs
import NIOCore
import Origin
import Store
import Testing
import TestSupport
import Vault

/// tus 1.0 against real origins on real sockets, over a real redis-server and a real store: a
/// folder, or a SeaweedFS bucket shared by two origins.
@Suite("tus uploads", .serialized)
struct TusUploadTests {
    @Test("OPTIONS announces the protocol; bad headers are refused naming the header or field")
    func protocolAndRefusals() async throws {
        try await withTusFixture(maxUploadBytes: 1 << 20) { fixture in
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                try await client.execute(uri: "/v1/uploads", method: .options) { response in
                    #expect(response.status == .noContent)
                    #expect(response.headers[HTTPField.Name("Tus-Version")!] == "1.0.0")
                    #expect(response.headers[HTTPField.Name("Tus-Extension")!] == "creation,creation-with-upload,termination,expiration,checksum")
                    #expect(response.headers[HTTPField.Name("Tus-Max-Size")!] == String(1 << 20))
                    #expect(response.headers[HTTPField.Name("Tus-Checksum-Algorithm")!] == "sha1,sha256")
                }
                func refused(_ headers: HTTPFields, _ status: HTTPResponse.Status, _ field: String) async throws {
                    try await client.execute(uri: "/v1/uploads", method: .post, headers: headers) { response in
                        #expect(response.status == status, "\(String(buffer: response.body))")
                        #expect(response.headers[TusFixture.tusResumable] == "1.0.0")
                        let answer = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any]
                        #expect(answer?["field"] as? String == field, "\(String(buffer: response.body))")
                    }
                }
                var wrongVersion = fixture.creation(length: 10)
                wrongVersion[TusFixture.tusResumable] = "0.2.2"
                try await refused(wrongVersion, .preconditionFailed, "Tus-Resumable")
                var noLength = fixture.auth
                noLength[TusFixture.uploadMetadata] = ""
                try await refused(noLength, .badRequest, "Upload-Length")
                var deferred = fixture.auth
                deferred[HTTPField.Name("Upload-Defer-Length")!] = "1"
                try await refused(deferred, .badRequest, "Upload-Defer-Length")
                try await refused(fixture.creation(length: 2 << 20), .contentTooLarge, "Upload-Length")
                try await refused(fixture.creation(length: 10, metadata: ["profile": "../etc"]), .badRequest, "profile")
                try await refused(fixture.creation(length: 10, metadata: ["colour": "red"]), .badRequest, "colour")
                var badMetadata = fixture.creation(length: 10)
                badMetadata[TusFixture.uploadMetadata] = "profile ZmFzdA"
                try await refused(badMetadata, .badRequest, "Upload-Metadata")
                var noKey = fixture.creation(length: 10)
                noKey[.authorization] = nil
                try await refused(noKey, .unauthorized, "Authorization")

                let location = try await fixture.create(client, length: 10)
                var wrongType = fixture.patch(offset: 0)
                wrongType[.contentType] = "application/octet-stream"
                try await client.execute(uri: location, method: .patch, headers: wrongType, body: ByteBuffer(bytes: [1])) { response in
                    #expect(response.status == .unsupportedMediaType)
                }
                try await client.execute(uri: location, method: .patch, headers: fixture.patch(offset: 0), body: ByteBuffer(bytes: [UInt8](repeating: 1, count: 11))) { response in
                    #expect(response.status == .contentTooLarge)
                }
                var badChecksum = fixture.patch(offset: 0)
                badChecksum[TusFixture.uploadChecksum] = "sha1 " + Data(repeating: 0, count: 20).base64EncodedString()
                try await client.execute(uri: location, method: .patch, headers: badChecksum, body: ByteBuffer(bytes: [1, 2, 3])) { response in
                    #expect(response.status.code == 460)
                    #expect(response.headers[TusFixture.uploadOffset] == "0")
                }
                var goodChecksum = fixture.patch(offset: 0)
                goodChecksum[TusFixture.uploadChecksum] = "sha256 " + Data(Digest.sha256([1, 2, 3])).base64EncodedString()
                try await client.execute(uri: location, method: .patch, headers: goodChecksum, body: ByteBuffer(bytes: [1, 2, 3])) { response in
                    #expect(response.status == .noContent)
                    #expect(response.headers[TusFixture.uploadOffset] == "3")
                }
                try await client.execute(uri: "/v1/uploads/unothere", method: .head, headers: fixture.auth) { response in
                    #expect(response.status == .notFound)
                }
            }
        }
    }

    @Test("a folder store: PATCH in pieces across parts, a wrong offset is 409, the last byte enqueues the job once")
    func folderUpload() async throws {
        try await withTusFixture { fixture in
            // Two whole parts (5 MiB of plaintext each), then a last part with a final chunk.
            let plaintext = tusPlaintext(11 << 20 + 12_345)
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                let location = try await fixture.create(client, length: plaintext.count, metadata: ["profile": "fast", "asset_id": "tus-folder", "filename": "a.mp4"])
                var offset = 0
                var jobID: String?
                for size in [700_001, 3 << 20, 2 << 20, 4 << 20] {
                    let (status, next, job) = try await fixture.send(client, location, offset: offset, plaintext[offset..<(offset + size)])
                    #expect(status == .noContent)
                    #expect(next == offset + size)
                    #expect(job == nil)
                    offset += size
                    let (_, reported, _) = try await fixture.head(client, location)
                    #expect(reported == offset, "HEAD reports what is stored")
                }
                let (conflict, current, _) = try await fixture.send(client, location, offset: offset - 1, plaintext[(offset - 1)...])
                #expect(conflict == .conflict)
                #expect(current == offset)
                let (status, end, job) = try await fixture.send(client, location, offset: offset, plaintext[offset...])
                #expect(status == .noContent)
                #expect(end == plaintext.count)
                jobID = job
                let id = try #require(jobID)
                // A PATCH repeated after the end changes nothing and names the same job.
                let (_, again, sameJob) = try await fixture.send(client, location, offset: plaintext.count, [][...])
                #expect(again == plaintext.count && sameJob == id)

                try await client.execute(uri: "/v1/jobs/\(id)", method: .get, headers: fixture.auth) { response in
                    #expect(response.status == .ok)
                }
                let spec = try #require(try await fixture.queue.job(id)?.spec)
                #expect(spec.sourceEncrypted == true)
                #expect(spec.assetID == "tus-folder")
                #expect(spec.profile == "fast")
                let uploadID = String(location.split(separator: "/").last!)
                #expect(spec.source == fixture.store.uploads + "/\(uploadID).sealed")
                #expect(try await fixture.plaintext(ofSource: try #require(spec.source)) == plaintext)
                #expect(try await fixture.jobCount() == 1)
                #expect(try await fixture.storedUploadNames() == ["\(uploadID).sealed"], "no partial file or tail left")
            }
        }
    }

    @Test("creation-with-upload: the POST's body completes a small upload")
    func creationWithUpload() async throws {
        try await withTusFixture { fixture in
            let plaintext = tusPlaintext(300_000, seed: 3)
            try await withOrigin(fixture.application()) { origin in
                var headers = fixture.creation(length: plaintext.count)
                headers[.contentType] = "application/offset+octet-stream"
                let jobID = try await origin.client.execute(uri: "/v1/uploads", method: .post, headers: headers, body: ByteBuffer(bytes: plaintext)) { response in
                    #expect(response.status == .created)
                    #expect(response.headers[.location] != nil)
                    #expect(response.headers[TusFixture.uploadOffset] == String(plaintext.count))
                    return try #require(response.headers[TusFixture.jobID])
                }
                let source = try #require(try await fixture.queue.job(jobID)?.spec?.source)
                #expect(try await fixture.plaintext(ofSource: source) == plaintext)
            }
        }
    }

    @Test("an origin that stopped after sealing (or after enqueueing) but before recording it: the next HEAD finishes, and the job is still enqueued once", arguments: ["open", "sealed"])
    func completionIsRepeatable(_ recordedState: String) async throws {
        try await withTusFixture { fixture in
            let plaintext = tusPlaintext(1_500_000, seed: 29)
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                let location = try await fixture.create(client, length: plaintext.count)
                let (_, _, job) = try await fixture.send(client, location, offset: 0, plaintext[...])
                let jobID = try #require(job)
                // What Redis holds when the origin died between the store (or the enqueue) and the record.
                let uploadID = String(location.split(separator: "/").last!)
                try await fixture.queue.redis.send(["HSET", fixture.queue.keys.upload(uploadID), "state", recordedState])
                let (status, offset, recovered) = try await fixture.head(client, location)
                #expect(status == .ok && offset == plaintext.count)
                #expect(recovered == jobID, "the job chosen at creation, enqueued once")
                #expect(try await fixture.jobCount() == 1)
                let source = try #require(try await fixture.queue.job(jobID)?.spec?.source)
                #expect(try await fixture.plaintext(ofSource: source) == plaintext)
            }
        }
    }

    @Test("termination removes the stored parts and the tail; expiry does too, on access and by the sweep")
    func terminationAndExpiry() async throws {
        try await withTusFixture(uploadLifetime: .seconds(1)) { fixture in
            let plaintext = tusPlaintext(6 << 20, seed: 5)
            let api = fixture.api()
            try await withOrigin(fixture.application(api)) { origin in
                let client = origin.client
                let location = try await fixture.create(client, length: plaintext.count + 1)
                let (status, _, _) = try await fixture.send(client, location, offset: 0, plaintext[...])
                #expect(status == .noContent)
                #expect(try await fixture.storedUploadNames().count == 2, "a partial file and a tail")
                try await client.execute(uri: location, method: .delete, headers: fixture.auth) { response in
                    #expect(response.status == .noContent)
                }
                #expect(try await fixture.head(client, location).0 == .notFound)
                #expect(try await fixture.storedUploadNames().isEmpty)

                let expiring = try await fixture.create(client, length: 100)
                _ = try await fixture.send(client, expiring, offset: 0, plaintext[0..<10])
                try await Task.sleep(for: .milliseconds(1300))
                #expect(try await fixture.head(client, expiring).0 == .gone)
                #expect(try await fixture.head(client, expiring).0 == .notFound)

                let swept = try await fixture.create(client, length: 100)
                _ = try await fixture.send(client, swept, offset: 0, plaintext[0..<10])
                #expect(try await fixture.storedUploadNames().count == 2)
                try await Task.sleep(for: .milliseconds(1300))
                #expect(await api.sweepExpiredUploads() == 1)
                #expect(try await fixture.storedUploadNames().isEmpty)
                #expect(try await fixture.head(client, swept).0 == .notFound)
                #expect(try await fixture.jobCount() == 0)
            }
        }
    }

    @Test("tuspy with Upload-Checksum on every PATCH, its connection cut midway, against a folder store")
    func realClientWithChecksums() async throws {
        try await withTusFixture { fixture in
            let plaintext = tusPlaintext(5 << 20 + 99, seed: 23)
            try FileManager.default.createDirectory(atPath: fixture.folder, withIntermediateDirectories: true)
            let file = fixture.folder + "/clip.bin"
            try Data(plaintext).write(to: URL(fileURLWithPath: file))
            try await withOrigin(fixture.application()) { origin in
                let report = try await runTusDriver([
                    "--endpoint", origin.baseURL, "--key", TusFixture.key, "--file", file, "--chunk-size", String(1 << 20),
                    "--drop-after", String(2 << 20 + 700), "--checksum", "--metadata", "profile=fast",
                ])
                #expect(report["drops"] as? Int == 1)
                let jobID = try #require(report["job_id"] as? String, "\(report)")
                let source = try #require(try await fixture.queue.job(jobID)?.spec?.source)
                #expect(try await fixture.plaintext(ofSource: source) == plaintext)
                #expect(try await fixture.jobCount() == 1)
            }
        }
    }
}
