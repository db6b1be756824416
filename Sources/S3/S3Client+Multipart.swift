import AsyncHTTPClient
import NIOCore
import NIOHTTP1

extension S3Client {
    /// S3's bounds on multipart uploads: parts of at least 5 MiB (but the last), at most 10,000.
    public static let minimumPartSize = 5 << 20
    public static let maximumPartCount = 10_000

    /// CreateMultipartUpload: the id the parts and the completion name. Sent once (a repeat would
    /// start a second upload).
    public func createMultipartUpload(bucket: String, key: String, contentType: String? = nil, metadata: [String: String] = [:]) async throws -> String {
        var operation = Operation(name: "CreateMultipartUpload", method: .POST, bucket: bucket, key: key, idempotent: false)
        operation.query = [("uploads", "")]
        operation.headers = Self.objectHeaders(contentType: contentType, metadata: metadata)
        let (_, body) = try await sendForBody(operation)
        do {
            return try S3MultipartAnswers.uploadID(body.readableBytesView, maxBytes: configuration.maxXMLBytes)
        } catch {
            throw failure(operation, .invalidAnswer(error.description))
        }
    }

    /// UploadPart: part `partNumber` (1 to 10,000) of the upload, from memory; retried as the
    /// policy allows (a part sent again replaces itself).
    public func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: ByteBuffer) async throws -> S3CompletedPart {
        precondition((1...Self.maximumPartCount).contains(partNumber), "part numbers run from 1 to 10,000")
        var operation = Operation(name: "UploadPart", method: .PUT, bucket: bucket, key: key, body: .bytes(body), idempotent: true)
        operation.query = [("partNumber", String(partNumber)), ("uploadId", uploadID)]
        let response = try await send(operation)
        guard let eTag = response.headers.first(name: "etag") else {
            throw failure(operation, .invalidAnswer("part \(partNumber) answered without an ETag"))
        }
        return S3CompletedPart(partNumber: partNumber, eTag: eTag)
    }

    /// CompleteMultipartUpload with `parts` in ascending order: the object appears whole, at once.
    /// S3 may answer 200 with an `<Error>`: that is thrown like any error. Returns the ETag.
    @discardableResult
    public func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [S3CompletedPart]) async throws -> String {
        var operation = Operation(name: "CompleteMultipartUpload", method: .POST, bucket: bucket, key: key, idempotent: false)
        operation.query = [("uploadId", uploadID)]
        operation.headers = [("content-type", "application/xml")]
        operation.body = .bytes(ByteBuffer(string: S3MultipartAnswers.completionBody(parts.sorted { $0.partNumber < $1.partNumber })))
        let (response, body) = try await sendForBody(operation)
        let answer: Result<String, S3ErrorBody>
        do {
            answer = try S3MultipartAnswers.completed(body.readableBytesView, maxBytes: configuration.maxXMLBytes)
        } catch {
            throw failure(operation, .invalidAnswer(error.description))
        }
        switch answer {
        case .success(let eTag):
            return eTag
        case .failure(let error):
            throw failure(operation, .status(Int(response.status.code), code: error.code, message: error.message, requestID: error.requestID))
        }
    }

    /// AbortMultipartUpload: the parts are dropped.
    public func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws {
        var operation = Operation(name: "AbortMultipartUpload", method: .DELETE, bucket: bucket, key: key, idempotent: true)
        operation.query = [("uploadId", uploadID)]
        _ = try await send(operation)
    }

    /// Uploads `body` (of any length) as a multipart upload of `partSize`-byte parts (the last may
    /// be shorter), holding one part in memory at a time; each part is retried on its own. On any
    /// failure, cancellation included, the upload is aborted and the error rethrown. Returns the ETag.
    @discardableResult
    public func uploadMultipart<Body: AsyncSequence & Sendable>(
        bucket: String, key: String, body: Body, partSize: Int = 16 << 20, contentType: String? = nil
    ) async throws -> String where Body.Element == ByteBuffer {
        precondition(partSize >= Self.minimumPartSize, "S3 parts are at least 5 MiB")
        let uploadID = try await createMultipartUpload(bucket: bucket, key: key, contentType: contentType)
        do {
            var parts: [S3CompletedPart] = []
            var pending = ByteBuffer()
            func flush() async throws {
                guard parts.count < Self.maximumPartCount else {
                    throw S3Error(operation: "UploadPart", bucket: bucket, key: key, reason: .tooLarge(limit: partSize * Self.maximumPartCount))
                }
                parts.append(try await uploadPart(bucket: bucket, key: key, uploadID: uploadID, partNumber: parts.count + 1, body: pending))
                pending.clear()
            }
            for try await var chunk in body {
                while chunk.readableBytes > 0 {
                    let take = min(chunk.readableBytes, partSize - pending.readableBytes)
                    var slice = chunk.readSlice(length: take)!
                    pending.writeBuffer(&slice)
                    if pending.readableBytes == partSize { try await flush() }
                }
            }
            if pending.readableBytes > 0 || parts.isEmpty { try await flush() }
            return try await completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID, parts: parts)
        } catch {
            // Abort even when cancelled: the parts would otherwise be stored (and billed) until a
            // lifecycle rule removes them.
            try? await Task { try await abortMultipartUpload(bucket: bucket, key: key, uploadID: uploadID) }.value
            throw error
        }
    }
}
