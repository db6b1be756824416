import AsyncHTTPClient
import NIOCore
import S3
import Testing
import TestSupport
import Vault

/// The client against a real S3 server: SeaweedFS (`weed mini`), which checks every signature.
@Suite("S3Client against SeaweedFS")
struct S3ClientTests {
    /// A key with what S3 keys may hold and URLs may not: spaces, `+`, `$`, `&`, `=`, non-ASCII.
    static let oddKey = "assets/a b+c/ü$&=v1.ts"

    private func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    private func pattern(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ $0 >> 11) }
    }

    private func collect(_ body: HTTPClientResponse.Body) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in body { bytes += chunk.readableBytesView }
        return bytes
    }

    @Test("put, head, get whole and ranged, delete; errors name the bucket, key, status and code")
    func objects() async throws {
        try await withS3 { server in
            let s3 = server.client()
            let data = Array("0123456789abcdefghij".utf8)
            let eTag = try await s3.putObject(bucket: server.bucket, key: Self.oddKey, body: buffer(data), contentType: "video/mp2t", metadata: ["asset": "a1"])
            #expect(eTag != nil)

            let info = try await s3.headObject(bucket: server.bucket, key: Self.oddKey)
            #expect(info.size == 20)
            #expect(info.eTag == eTag)
            #expect(info.contentType == "video/mp2t")
            #expect(info.metadata["asset"] == "a1")
            // Listed (with encoding-type=url) as the same key.
            #expect(try await s3.listObjects(bucket: server.bucket, prefix: "assets/").objects.map(\.key) == [Self.oddKey])

            #expect(try await collect(s3.getObject(bucket: server.bucket, key: Self.oddKey).body) == data)
            let ranged = try await s3.getObject(bucket: server.bucket, key: Self.oddKey, range: .bytes(2...5))
            #expect(ranged.info.size == 20)
            #expect(ranged.contentLength == 4)
            #expect(try await collect(ranged.body) == Array("2345".utf8))
            #expect(Array(try await s3.getObjectBytes(bucket: server.bucket, key: Self.oddKey, range: .suffix(3), maxBytes: 100).readableBytesView) == Array("hij".utf8))
            #expect(Array(try await s3.getObjectBytes(bucket: server.bucket, key: Self.oddKey, range: .from(18), maxBytes: 100).readableBytesView) == Array("ij".utf8))
            await #expect(throws: S3Error.self) { _ = try await s3.getObjectBytes(bucket: server.bucket, key: Self.oddKey, maxBytes: 10) }

            try await s3.deleteObject(bucket: server.bucket, key: Self.oddKey)
            let missing = await #expect(throws: S3Error.self) { _ = try await s3.getObject(bucket: server.bucket, key: Self.oddKey) }
            #expect(missing?.status == 404)
            #expect(missing?.code == "NoSuchKey")
            #expect(missing?.attempts == 1)
            let text = missing.map { "\($0)" } ?? ""
            #expect(text.contains("GetObject s3://\(server.bucket)/\(Self.oddKey)"))
            #expect(text.contains("HTTP 404 NoSuchKey"))
            let headMissing = await #expect(throws: S3Error.self) { _ = try await s3.headObject(bucket: server.bucket, key: Self.oddKey) }
            #expect(headMissing?.isNotFound == true)
            let noBucket = await #expect(throws: S3Error.self) { _ = try await s3.listObjects(bucket: "no-such-bucket-sg") }
            #expect(noBucket?.code == "NoSuchBucket")
            #expect(noBucket.map { "\($0)" }?.contains("s3://no-such-bucket-sg") == true)
        }
    }

    @Test("a body streamed up from an AsyncSequence and streamed back down")
    func streamed() async throws {
        try await withS3 { server in
            let s3 = server.client()
            let chunks = stride(from: 0, to: 3 << 20, by: 64 << 10).map { offset in pattern(64 << 10, seed: UInt8(truncatingIfNeeded: offset >> 16)) }
            let expected = chunks.flatMap { $0 }
            let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
            for chunk in chunks { continuation.yield(ByteBuffer(bytes: chunk)) }
            continuation.finish()
            try await s3.putObject(bucket: server.bucket, key: "streamed/source.bin", length: Int64(expected.count), body: stream)

            let object = try await s3.getObject(bucket: server.bucket, key: "streamed/source.bin")
            #expect(object.info.size == Int64(expected.count))
            var received = 0
            var digestInput: [UInt8] = []
            for try await chunk in object.body {
                received += chunk.readableBytes
                digestInput += chunk.readableBytesView
            }
            #expect(received == expected.count)
            #expect(Digest.sha256(digestInput) == Digest.sha256(expected))
        }
    }

    @Test("ListObjectsV2: pages with continuation tokens, prefixes, delimiters")
    func listing() async throws {
        try await withS3 { server in
            let s3 = server.client()
            let keys = (0..<7).map { "list/v1/seg-\($0).ts" } + ["list/v2/master.m3u8", "other/x"]
            for key in keys { try await s3.putObject(bucket: server.bucket, key: key, body: ByteBuffer(string: key)) }

            let first = try await s3.listObjects(bucket: server.bucket, prefix: "list/v1/", maxKeys: 3)
            #expect(first.objects.count == 3)
            #expect(first.isTruncated)
            #expect(first.nextContinuationToken != nil)

            var pages = 0
            var listed: [String] = []
            for try await page in s3.listAllObjects(bucket: server.bucket, prefix: "list/v1/", pageSize: 3) {
                pages += 1
                listed += page.objects.map(\.key)
            }
            #expect(pages == 3)
            #expect(listed == (0..<7).map { "list/v1/seg-\($0).ts" })
            #expect(try await s3.listAllObjects(bucket: server.bucket, prefix: "list/").objects().count == 8)

            let folders = try await s3.listObjects(bucket: server.bucket, prefix: "list/", delimiter: "/")
            #expect(folders.commonPrefixes == ["list/v1/", "list/v2/"])
            #expect(folders.objects.isEmpty)
        }
    }

    @Test("multipart: parts of 5 MiB and a short last one, completed whole; an aborted upload takes no more parts")
    func multipart() async throws {
        try await withS3 { server in
            let s3 = server.client()
            let size = (11 << 20) + 123
            let expected = pattern(size, seed: 3)
            let chunks = stride(from: 0, to: size, by: 1 << 20).map { Array(expected[$0..<min($0 + (1 << 20), size)]) }
            let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
            for chunk in chunks { continuation.yield(ByteBuffer(bytes: chunk)) }
            continuation.finish()
            let eTag = try await s3.uploadMultipart(bucket: server.bucket, key: "big/source.bin", body: stream, partSize: S3Client.minimumPartSize)
            #expect(eTag.hasSuffix("-3\"") || eTag.hasSuffix("-3"))
            #expect(try await s3.headObject(bucket: server.bucket, key: "big/source.bin").size == Int64(size))
            let back = try await collect(s3.getObject(bucket: server.bucket, key: "big/source.bin").body)
            #expect(back.count == size)
            #expect(Digest.sha256(back) == Digest.sha256(expected))
            let tail = try await s3.getObjectBytes(bucket: server.bucket, key: "big/source.bin", range: .bytes(Int64(size - 200)...Int64(size - 1)), maxBytes: 200)
            #expect(Array(tail.readableBytesView) == Array(expected[(size - 200)...]))

            let upload = try await s3.createMultipartUpload(bucket: server.bucket, key: "big/aborted.bin")
            let part = try await s3.uploadPart(bucket: server.bucket, key: "big/aborted.bin", uploadID: upload, partNumber: 1, body: buffer(pattern(S3Client.minimumPartSize)))
            try await s3.abortMultipartUpload(bucket: server.bucket, key: "big/aborted.bin", uploadID: upload)
            let completed = await #expect(throws: S3Error.self) {
                try await s3.completeMultipartUpload(bucket: server.bucket, key: "big/aborted.bin", uploadID: upload, parts: [part])
            }
            #expect(completed?.code == "NoSuchUpload")
            let head = await #expect(throws: S3Error.self) { _ = try await s3.headObject(bucket: server.bucket, key: "big/aborted.bin") }
            #expect(head?.isNotFound == true)

            // A source that fails after a whole part: the error comes back, the upload is aborted,
            // no object appears.
            struct SourceFailed: Error {}
            let (failing, feed) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            feed.yield(buffer(pattern(S3Client.minimumPartSize + 1)))
            feed.finish(throwing: SourceFailed())
            await #expect(throws: SourceFailed.self) {
                try await s3.uploadMultipart(bucket: server.bucket, key: "big/failed.bin", body: failing, partSize: S3Client.minimumPartSize)
            }
            let failedHead = await #expect(throws: S3Error.self) { _ = try await s3.headObject(bucket: server.bucket, key: "big/failed.bin") }
            #expect(failedHead?.isNotFound == true)
        }
    }

    @Test("a wrong secret key is refused: the server checks signatures")
    func wrongSecret() async throws {
        try await withS3 { server in
            let impostor = server.client(credentials: S3Credentials(accessKeyID: S3ServerProcess.accessKeyID, secretAccessKey: "not-the-secret"))
            let put = await #expect(throws: S3Error.self) {
                try await impostor.putObject(bucket: server.bucket, key: "x", body: ByteBuffer(string: "x"))
            }
            #expect(put?.status == 403)
            #expect(put?.code == "SignatureDoesNotMatch")
            #expect(put?.attempts == 1)
            let list = await #expect(throws: S3Error.self) { _ = try await impostor.listObjects(bucket: server.bucket) }
            #expect(list?.code == "SignatureDoesNotMatch")
            // And the right key still works.
            try await server.client().putObject(bucket: server.bucket, key: "x", body: ByteBuffer(string: "x"))
        }
    }

    @Test("a presigned URL fetches the object with no other credentials; conditional PUTs (If-None-Match, If-Match) do not overwrite")
    func presignedAndConditional() async throws {
        try await withS3 { server in
            let s3 = server.client()
            try await s3.putObject(bucket: server.bucket, key: "shared/a b.txt", body: ByteBuffer(string: "hello"), ifNoneMatch: true)
            let url = s3.presignedURL(bucket: server.bucket, key: "shared/a b.txt", expires: 300)
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            #expect(response.status.code == 200)
            #expect(String(buffer: try await response.body.collect(upTo: 100)) == "hello")

            let again = await #expect(throws: S3Error.self) {
                try await s3.putObject(bucket: server.bucket, key: "shared/a b.txt", body: ByteBuffer(string: "other"), ifNoneMatch: true)
            }
            #expect(again?.status == 412)
            #expect(String(buffer: try await s3.getObjectBytes(bucket: server.bucket, key: "shared/a b.txt", maxBytes: 100)) == "hello")

            // If-Match: a pointer swapped only from the version it was read at.
            let first = try #require(try await s3.putObject(bucket: server.bucket, key: "pointer", body: ByteBuffer(string: "v1")))
            let second = try await s3.putObject(bucket: server.bucket, key: "pointer", body: ByteBuffer(string: "v2"), ifMatch: first)
            #expect(second != nil && second != first)
            let stale = await #expect(throws: S3Error.self) {
                try await s3.putObject(bucket: server.bucket, key: "pointer", body: ByteBuffer(string: "v3"), ifMatch: first)
            }
            #expect(stale?.status == 412)
            #expect(String(buffer: try await s3.getObjectBytes(bucket: server.bucket, key: "pointer", maxBytes: 100)) == "v2")
        }
    }
}
