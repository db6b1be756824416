import NIOCore
import S3

/// Sealed uploads in a bucket: `PREFIX/uploads/<id>.sealed` written as a multipart upload (one
/// part per ``SealedUploadTarget/putPart(_:handle:number:offset:bytes:)``; the object appears only
/// when completed), tails as small objects beside it. Any origin with the handle and the part
/// tags continues or completes the upload.
public struct BucketUploadTarget: SealedUploadTarget {
    public let client: S3Client
    public let bucket: String
    /// The key prefix of sealed uploads (`PREFIX/uploads/`).
    public let keyPrefix: String

    public init(client: S3Client, bucket: String, keyPrefix: String) {
        self.client = client
        self.bucket = bucket
        self.keyPrefix = keyPrefix
    }

    func key(_ id: String) -> String { keyPrefix + SealedUploadNames.sealed(id) }
    func tailKey(_ id: String, _ generation: Int) -> String { keyPrefix + SealedUploadNames.tail(id, generation) }

    public func source(of id: String) -> String { "s3://\(bucket)/\(key(id))" }

    public func begin(_ id: String) async throws(StoreError) -> String {
        try SealedUploadNames.check(id)
        return try await s3("start the upload", key(id)) {
            try await client.createMultipartUpload(bucket: bucket, key: key(id), contentType: "application/octet-stream")
        }
    }

    public func putPart(_ id: String, handle: String, number: Int, offset: Int, bytes: ByteBuffer) async throws(StoreError) -> String {
        try SealedUploadNames.check(id)
        guard (1...S3Client.maximumPartCount).contains(number) else {
            throw StoreError("s3://\(bucket)/\(key(id)): part \(number) is outside 1…\(S3Client.maximumPartCount)")
        }
        return try await s3("store part \(number)", key(id)) {
            try await client.uploadPart(bucket: bucket, key: key(id), uploadID: handle, partNumber: number, body: bytes).eTag
        }
    }

    public func complete(_ id: String, handle: String, partTags: [String], size: Int) async throws(StoreError) {
        try SealedUploadNames.check(id)
        let parts = partTags.enumerated().map { S3CompletedPart(partNumber: $0.offset + 1, eTag: $0.element) }
        do {
            try await client.completeMultipartUpload(bucket: bucket, key: key(id), uploadID: handle, parts: parts)
        } catch let error as S3Error where error.isNotFound || error.code == "NoSuchUpload" {
            // Completed before (the object made, the caller's record not): it is there whole.
            if let info = try? await client.headObject(bucket: bucket, key: key(id)), info.size == Int64(size) { return }
            throw StoreError("s3://\(bucket)/\(key(id)): cannot complete the upload: \(error)")
        } catch {
            throw StoreError("s3://\(bucket)/\(key(id)): cannot complete the upload: \(error)")
        }
        // The parts' ETags match what was committed; the size is the last check that the object
        // holds every part of this upload and nothing else.
        let stored = try await s3("check the completed upload", key(id)) { try await client.headObject(bucket: bucket, key: key(id)).size }
        guard stored == Int64(size) else {
            throw StoreError("s3://\(bucket)/\(key(id)): the completed upload is \(stored) bytes, not \(size)")
        }
    }

    public func storedSize(_ id: String) async throws(StoreError) -> Int? {
        try SealedUploadNames.check(id)
        do {
            return Int(try await client.headObject(bucket: bucket, key: key(id)).size)
        } catch let error as S3Error where error.isNotFound {
            return nil
        } catch {
            throw StoreError("s3://\(bucket)/\(key(id)): cannot inspect the upload: \(error)")
        }
    }

    public func abort(_ id: String, handle: String) async throws(StoreError) {
        try SealedUploadNames.check(id)
        // An empty uploadId would make the request a DeleteObject of the finished upload.
        guard !handle.isEmpty else { return }
        do {
            try await client.abortMultipartUpload(bucket: bucket, key: key(id), uploadID: handle)
        } catch let error as S3Error where error.isNotFound {
            return
        } catch {
            throw StoreError("s3://\(bucket)/\(key(id)): cannot abort the upload: \(error)")
        }
    }

    public func writeTail(_ id: String, generation: Int, bytes: ByteBuffer) async throws(StoreError) {
        try SealedUploadNames.check(id)
        let key = tailKey(id, generation)
        _ = try await s3("store the upload's tail", key) { try await client.putObject(bucket: bucket, key: key, body: bytes) }
    }

    public func readTail(_ id: String, generation: Int, maximumBytes: Int) async throws(StoreError) -> [UInt8]? {
        try SealedUploadNames.check(id)
        let key = tailKey(id, generation)
        do {
            let buffer = try await client.getObjectBytes(bucket: bucket, key: key, maxBytes: maximumBytes)
            return Array(buffer.readableBytesView)
        } catch let error as S3Error where error.isNotFound {
            return nil
        } catch {
            throw StoreError("s3://\(bucket)/\(key): cannot read the upload's tail: \(error)")
        }
    }

    public func removeTail(_ id: String, generation: Int) async throws(StoreError) {
        try SealedUploadNames.check(id)
        let key = tailKey(id, generation)
        try await s3("remove the upload's tail", key) { try await client.deleteObject(bucket: bucket, key: key) }
    }

    public func removeTails(_ id: String) async throws(StoreError) {
        try SealedUploadNames.check(id)
        let start = keyPrefix + SealedUploadNames.tailPrefix(id)
        let keys = try await s3("list the upload's tails", start) { try await client.listAllObjects(bucket: bucket, prefix: start).objects().map(\.key) }
        for key in keys {
            try await s3("remove the upload's tail", key) { try await client.deleteObject(bucket: bucket, key: key) }
        }
    }

    public func removeSource(_ source: String) async throws(StoreError) -> Bool {
        let start = "s3://\(bucket)/\(keyPrefix)"
        guard source.hasPrefix(start), StorePath.isSafeComponent(source.dropFirst(start.count)) else { return false }
        let key = String(source.dropFirst("s3://\(bucket)/".count))
        try await s3("remove the upload", key) { try await client.deleteObject(bucket: bucket, key: key) }
        return true
    }

    private func s3<Value>(_ what: String, _ key: String, _ body: () async throws -> Value) async throws(StoreError) -> Value {
        do {
            return try await body()
        } catch {
            throw StoreError("s3://\(bucket)/\(key): cannot \(what): \(error)")
        }
    }
}

extension BucketStore: SealedUploadStorage {
    /// `PREFIX/uploads/` in the store's bucket.
    public var sealedUploads: any SealedUploadTarget { BucketUploadTarget(client: client, bucket: bucket, keyPrefix: uploadsPrefix) }
}
