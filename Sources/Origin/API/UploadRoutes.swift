import Foundation
import Hummingbird
import Jobs
import Metrics
import NIOCore
import NIOPosix
import Vault

extension JobAPI {
    func registerUploadRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.post("/v1/uploads") { request, _ in try await self.authorized(request) { try await self.upload(request) } }
    }

    // MARK: - Uploads

    /// The query parameters `POST /v1/uploads` accepts.
    static let uploadFields: Set<String> = ["profile", "asset_id", "priority", "callback_url", "idempotency_key", "max_attempts", "keep_source"]

    private func upload(_ request: Request) async throws -> Response {
        var spec = JobSpec(kind: .transcode, profile: configuration.defaultProfile, sourceEncrypted: true)
        for (name, value) in request.uri.queryParameters {
            let field = String(name)
            let text = String(value)
            guard Self.uploadFields.contains(field) else {
                return Self.error(.badRequest, "unknown query parameter '\(field)'", field: field)
            }
            switch field {
            case "profile":
                guard JobID.isValid(text) else { return Self.error(.badRequest, "profile must name a profile", field: field) }
                spec.profile = text
            case "asset_id": spec.assetID = text
            case "priority":
                guard let priority = JobPriority(rawValue: text) else {
                    return Self.error(.badRequest, "priority must be high or normal", field: field)
                }
                spec.priority = priority
            case "callback_url": spec.callbackURL = text
            case "idempotency_key": spec.idempotencyKey = text
            case "max_attempts":
                guard let number = Int(text) else { return Self.error(.badRequest, "max_attempts must be a whole number", field: field) }
                spec.maxAttempts = number
            case "keep_source": spec.keepSource = text == "1" || text == "true"
            default: break
            }
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxUploadBytes {
            return Self.error(.contentTooLarge, "the upload is \(length) bytes; the limit is \(configuration.maxUploadBytes)", field: "body")
        }
        let uploadID = "u" + JobID.random().dropFirst()
        spec.id = nil
        spec.source = configuration.uploadsDirectory + "/\(uploadID).sealed"
        do {
            try spec.validate(callbackPolicy: queue.callbackPolicy)
        } catch {
            return Self.error(.badRequest, error.description, field: error.field)
        }

        let path = spec.source!
        let writer: UploadWriter
        do {
            writer = try await threadPool.runIfActive { [configuration, keyring] in
                try FileManager.default.createDirectory(atPath: configuration.uploadsDirectory, withIntermediateDirectories: true)
                return UploadWriter(try SealedSourceWriter(path: path, keyring: keyring, uploadID: uploadID))
            }
        } catch {
            logger.error("cannot store an upload", metadata: ["error": "\(error)"])
            return Self.error(.internalServerError, "the upload cannot be stored")
        }
        var total = 0
        do {
            for try await buffer in request.body {
                total += buffer.readableBytes
                if total > configuration.maxUploadBytes {
                    await discard(writer)
                    Counter(label: "streamgate_uploads_rejected_total", dimensions: [("reason", "too_large")]).increment()
                    return Self.error(.contentTooLarge, "the upload is over the limit of \(configuration.maxUploadBytes) bytes", field: "body")
                }
                try await threadPool.runIfActive { try writer.append(buffer) }
            }
            guard total > 0 else {
                await discard(writer)
                return Self.error(.badRequest, "the upload is empty", field: "body")
            }
            try await threadPool.runIfActive { try writer.finish() }
        } catch let error as VaultError {
            // The server could not store it: out of space, or another I/O failure.
            await discard(writer)
            logger.error("cannot store an upload", metadata: ["error": "\(error)"])
            if let code = error.systemError, code == ENOSPC || code == EDQUOT {
                return Self.error(HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), "no space left to store the upload")
            }
            return Self.error(.internalServerError, "the upload cannot be stored")
        } catch {
            // The body stopped arriving: the client went away or sent a broken stream.
            await discard(writer)
            logger.warning("upload did not complete", metadata: ["error": "\(error)"])
            return Self.error(.badRequest, "the upload did not complete", field: "body")
        }
        Counter(label: "streamgate_uploads_total").increment()
        Counter(label: "streamgate_upload_bytes_total").increment(by: total)
        do {
            return try await enqueue(spec, upload: (uploadID, total))
        } catch {
            await discard(writer)
            throw error
        }
    }

    private func discard(_ writer: UploadWriter) async {
        _ = try? await threadPool.runIfActive { writer.discard() }
    }
}

/// A sealed upload being written, used by one request at a time from thread-pool threads.
private final class UploadWriter: @unchecked Sendable {
    private let writer: SealedSourceWriter

    init(_ writer: SealedSourceWriter) { self.writer = writer }

    func append(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { try writer.append($0) }
    }

    func finish() throws { try writer.finish() }
    func discard() { writer.discard() }
}
