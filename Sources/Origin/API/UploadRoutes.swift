import Foundation
import Hummingbird
import Jobs
import Metrics
import NIOCore
import Store
import Vault

extension JobAPI {
    func registerUploadRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.post("/v1/uploads") { request, _ in
            // tus creation (a resumable upload) or, without the tus header, the whole file in one request.
            guard request.headers[TusRoutes.tusResumable] == nil else { return try await self.tusCreate(request) }
            return try await self.authorized(request) { try await self.upload(request) }
        }
    }

    // MARK: - Uploads

    /// The query parameters `POST /v1/uploads` accepts (and the `Upload-Metadata` keys of tus).
    static let uploadFields: Set<String> = ["profile", "asset_id", "priority", "callback_url", "idempotency_key", "max_attempts", "keep_source", "poster_time"]

    /// The job an upload enqueues, from its fields (query parameters or tus metadata); else the
    /// 400 naming the field. `source` is the sealed upload's.
    func uploadSpec(_ fields: [(name: String, value: String)], source: String) -> Result<JobSpec, UploadFieldError> {
        var spec = JobSpec(kind: .transcode, profile: configuration.defaultProfile, sourceEncrypted: true)
        for (field, text) in fields {
            guard Self.uploadFields.contains(field) else { return .failure(UploadFieldError("unknown parameter '\(field)'", field: field)) }
            switch field {
            case "profile":
                guard JobID.isValid(text) else { return .failure(UploadFieldError("profile must name a profile", field: field)) }
                spec.profile = text
            case "asset_id": spec.assetID = text
            case "priority":
                guard let priority = JobPriority(rawValue: text) else { return .failure(UploadFieldError("priority must be high or normal", field: field)) }
                spec.priority = priority
            case "callback_url": spec.callbackURL = text
            case "poster_time":
                guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
                    return .failure(UploadFieldError("poster_time must be seconds from the start, 0 or more", field: field))
                }
                spec.posterTime = seconds
            case "idempotency_key": spec.idempotencyKey = text
            case "max_attempts":
                guard let number = Int(text) else { return .failure(UploadFieldError("max_attempts must be a whole number", field: field)) }
                spec.maxAttempts = number
            case "keep_source": spec.keepSource = text == "1" || text == "true"
            default: break
            }
        }
        spec.id = nil
        spec.source = source
        do {
            try spec.validate(callbackPolicy: queue.callbackPolicy)
        } catch {
            return .failure(UploadFieldError(error.description, field: error.field))
        }
        return .success(spec)
    }

    /// A new upload's id: `u` and base32, like a job's.
    static func newUploadID() -> String { "u" + JobID.random().dropFirst() }

    private func upload(_ request: Request) async throws -> Response {
        let uploadID = Self.newUploadID()
        let fields = request.uri.queryParameters.map { (name: String($0.key), value: String($0.value)) }
        var spec: JobSpec
        switch uploadSpec(fields, source: uploads.source(of: uploadID)) {
        case .success(let made): spec = made
        case .failure(let problem): return Self.error(.badRequest, problem.message, field: problem.field)
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxUploadBytes {
            return Self.error(.contentTooLarge, "the upload is \(length) bytes; the limit is \(configuration.maxUploadBytes)", field: "body")
        }
        let writer: SealedUploadWriter
        do {
            let header = try SealedChunkSealer.makeHeader(keyring: keyring, uploadID: uploadID)
            let sealer = try SealedChunkSealer(header: header, keyring: keyring, expectedUploadID: uploadID)
            let handle = try await uploads.begin(uploadID)
            writer = SealedUploadWriter(
                id: uploadID, target: uploads, sealer: sealer, handle: handle,
                chunksPerPart: SealedUploadWriter.chunksPerPart(length: configuration.maxUploadBytes, chunkSize: sealer.chunkSize)
            )
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
                try await stored { try await writer.append(buffer) }
            }
            guard total > 0 else {
                await discard(writer)
                return Self.error(.badRequest, "the upload is empty", field: "body")
            }
            _ = try await stored { try await writer.finish() }
        } catch let error as UploadStoreFailure {
            // The server could not store it: out of space, an unreachable bucket.
            await discard(writer)
            logger.error("cannot store an upload", metadata: ["error": "\(error.underlying)"])
            if "\(error.underlying)".contains(String(cString: strerror(ENOSPC)).lowercased()) {
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
            _ = try? await uploads.removeSource(uploads.source(of: uploadID))
            throw error
        }
    }

    /// Runs a step that writes to the store, telling its failures apart from the client's.
    func stored<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as UploadStoreFailure {
            throw error
        } catch let error as UploadSessions.Failure {
            throw error
        } catch {
            throw UploadStoreFailure(underlying: error)
        }
    }

    private func discard(_ writer: SealedUploadWriter) async {
        // Not cancelled with the request: parts left behind are stored (and billed) for nothing.
        await Task { try? await uploads.abort(writer.id, handle: writer.handle) }.value
    }
}

/// An upload field (query parameter or tus metadata) refused: why, and which.
struct UploadFieldError: Error {
    let message: String
    let field: String?
    init(_ message: String, field: String?) {
        self.message = message
        self.field = field
    }
}

/// The store (or sealing) failed while the request was fine.
struct UploadStoreFailure: Error, CustomStringConvertible {
    let underlying: any Error
    var description: String { "\(underlying)" }
}
