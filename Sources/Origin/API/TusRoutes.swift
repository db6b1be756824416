import Foundation
import HTTPTypes
import Hummingbird
import Jobs
import NIOCore
import Store
import Vault

/// The tus 1.0 protocol under `/v1/uploads`: core, creation, creation-with-upload, termination,
/// expiration and checksum (sha1, sha256). Every request but `OPTIONS` needs the API key.
///
/// Each PATCH's bytes are sealed (chunked AES-256-GCM) as they arrive: whole parts go to the store
/// (a bucket's multipart upload, or a partial file), the rest to a small sealed tail, and only then
/// does `Upload-Offset` count them, so the offset a HEAD reports is durable and any origin sharing
/// Redis and the store continues from it. The PATCH that brings the last byte completes the sealed
/// source and enqueues its job (`StreamGate-Job-ID`), once.
enum TusRoutes {
    static let tusResumable = HTTPField.Name("Tus-Resumable")!
    static let tusVersion = HTTPField.Name("Tus-Version")!
    static let tusExtension = HTTPField.Name("Tus-Extension")!
    static let tusMaxSize = HTTPField.Name("Tus-Max-Size")!
    static let tusChecksumAlgorithm = HTTPField.Name("Tus-Checksum-Algorithm")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadDeferLength = HTTPField.Name("Upload-Defer-Length")!
    static let uploadMetadata = HTTPField.Name("Upload-Metadata")!
    static let uploadExpires = HTTPField.Name("Upload-Expires")!
    static let uploadChecksum = HTTPField.Name("Upload-Checksum")!
    /// The job enqueued for a completed upload.
    static let jobID = HTTPField.Name("StreamGate-Job-ID")!

    static let locked = HTTPResponse.Status(code: 423, reasonPhrase: "Locked")
    static let checksumMismatch = HTTPResponse.Status(code: 460, reasonPhrase: "Checksum Mismatch")
    /// A PATCH with `Upload-Checksum` is held in memory until it is checked: at most this much.
    static let maximumChecksummedBytes = 32 << 20
    /// Metadata keys tus clients add on their own (Uppy, tus-js-client): read past, not refused.
    static let clientMetadata: Set<String> = ["filename", "filetype", "name", "type", "relativePath"]
}

extension JobAPI {
    func registerTusRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.on("/v1/uploads", method: .options) { _, _ in self.tusOptions() }
        router.head("/v1/uploads/{id}") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.tusAuthorized(request) { try await self.tusHead(id) }
        }
        router.patch("/v1/uploads/{id}") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.tusAuthorized(request) { try await self.tusPatch(request, id: id) }
        }
        router.delete("/v1/uploads/{id}") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.tusAuthorized(request) { try await self.tusTerminate(id) }
        }
    }

    // MARK: - Answers

    func tusOptions() -> Response {
        var fields = Self.tusFields()
        fields[TusRoutes.tusVersion] = TusHeaders.version
        fields[TusRoutes.tusExtension] = TusHeaders.extensions
        fields[TusRoutes.tusMaxSize] = String(configuration.maxUploadBytes)
        fields[TusRoutes.tusChecksumAlgorithm] = TusHeaders.checksumAlgorithms.joined(separator: ",")
        return Response(status: .noContent, headers: fields)
    }

    static func tusFields() -> HTTPFields {
        [TusRoutes.tusResumable: TusHeaders.version, .cacheControl: "no-store"]
    }

    static func tusError(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, offset: Int? = nil) -> Response {
        var response = error(status, message, field: field)
        response.headers[TusRoutes.tusResumable] = TusHeaders.version
        if let offset { response.headers[TusRoutes.uploadOffset] = String(offset) }
        return response
    }

    /// What every answer about one upload says: where it is, until when, and its job once enqueued.
    func tusAnswer(_ status: HTTPResponse.Status, _ session: UploadSession, location: Bool = false) -> Response {
        var fields = Self.tusFields()
        fields[TusRoutes.uploadOffset] = String(session.offset)
        fields[TusRoutes.uploadLength] = String(session.length)
        if session.state == .open { fields[TusRoutes.uploadExpires] = HTTPSemantics.httpDate(Int(session.expires / 1000)) }
        if session.state == .enqueued { fields[TusRoutes.jobID] = session.jobID }
        if location { fields[.location] = "/v1/uploads/\(session.id)" }
        return Response(status: status, headers: fields)
    }

    /// The API key, then the protocol version; errors carry `Tus-Resumable` as tus wants.
    func tusAuthorized(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        var answer = try await authorized(request) {
            do throws(TusHeaderError) {
                try TusHeaders.checkResumable(request.headers[TusRoutes.tusResumable])
            } catch {
                return Self.tusError(.preconditionFailed, error.description, field: error.header)
            }
            return try await body()
        }
        answer.headers[TusRoutes.tusResumable] = TusHeaders.version
        return answer
    }

    // MARK: - Creation

    func tusCreate(_ request: Request) async throws -> Response {
        try await tusAuthorized(request) {
            guard request.headers[TusRoutes.uploadDeferLength] == nil else {
                return Self.tusError(.badRequest, "Upload-Defer-Length is not supported: give Upload-Length", field: "Upload-Defer-Length")
            }
            let length: Int
            let metadata: [String: String]
            do throws(TusHeaderError) {
                length = try TusHeaders.parseSize(request.headers[TusRoutes.uploadLength], header: "Upload-Length")
                metadata = try TusHeaders.parseMetadata(request.headers[TusRoutes.uploadMetadata] ?? "")
            } catch {
                return Self.tusError(.badRequest, error.description, field: error.header)
            }
            guard length > 0 else { return Self.tusError(.badRequest, "Upload-Length must be above 0: an empty upload has nothing to transcode", field: "Upload-Length") }
            guard length <= configuration.maxUploadBytes else {
                return Self.tusError(.contentTooLarge, "Upload-Length \(length) is over the limit of \(configuration.maxUploadBytes) bytes", field: "Upload-Length")
            }
            let id = Self.newUploadID()
            let fields = metadata.filter { !TusRoutes.clientMetadata.contains($0.key) }.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
            var spec: JobSpec
            switch uploadSpec(fields, source: uploads.source(of: id)) {
            case .success(let made): spec = made
            case .failure(let problem): return Self.tusError(.badRequest, "Upload-Metadata: \(problem.message)", field: problem.field)
            }
            spec.id = JobID.random()
            let session: UploadSession
            do {
                let header = try SealedChunkSealer.makeHeader(keyring: keyring, uploadID: id)
                let handle = try await uploads.begin(id)
                let chunkSize = SealedSource.defaultChunkSize
                session = UploadSession(
                    id: id, length: length, chunkSize: chunkSize,
                    chunksPerPart: SealedUploadWriter.chunksPerPart(length: length, chunkSize: chunkSize), header: header, handle: handle,
                    progress: SealedProgress(), expires: UploadSessions.now() + configuration.uploadLifetime.milliseconds,
                    spec: spec.json(), jobID: spec.id!, state: .open
                )
            } catch {
                logger.error("cannot start a resumable upload", metadata: ["error": "\(error)"])
                return Self.tusError(.internalServerError, "the upload cannot be stored")
            }
            let created: Bool
            do {
                created = try await sessions.create(session)
            } catch {
                // Unrecorded, nobody could continue or remove it: drop what was started.
                try? await uploads.abort(id, handle: session.handle)
                throw error
            }
            guard created else { return Self.tusError(.conflict, "upload \(id) exists") }
            sweepSoon()
            // creation-with-upload: the POST's body is the first PATCH.
            let hasBody = request.headers[.contentType] == TusHeaders.offsetContentType
                && (request.headers[.contentLength].flatMap(Int.init) ?? 1) > 0
            guard hasBody else { return tusAnswer(.created, session, location: true) }
            return try await write(request, id: id, clientOffset: 0, created: true)
        }
    }

    // MARK: - Core

    private func tusHead(_ id: String) async throws -> Response {
        guard UploadSession.isValidID(id), var session = try await sessions.load(id) else { return Self.tusError(.notFound, "no upload \(id)", field: "id") }
        if session.state == .open, session.expires <= UploadSessions.now() {
            await expire(session)
            return Self.tusError(.gone, "upload \(id) expired", field: "id")
        }
        // Every byte is durable but the upload was not completed (its writer stopped): whoever
        // notices completes it.
        if (session.state == .open && session.offset == session.length) || session.state == .sealed,
           let token = try await sessions.lock(id, patience: .zero) {
            defer { Task { await sessions.unlock(id, token: token) } }
            do {
                if let current = try await sessions.load(id) { session = try await complete(current, token: token) }
            } catch {
                // The answer is still the durable state; the next request tries again.
                logger.error("cannot complete an upload", metadata: ["upload": "\(id)", "error": "\(error)"])
            }
        }
        return tusAnswer(.ok, session)
    }

    private func tusPatch(_ request: Request, id: String) async throws -> Response {
        guard request.headers[.contentType] == TusHeaders.offsetContentType else {
            return Self.tusError(.unsupportedMediaType, "Content-Type must be \(TusHeaders.offsetContentType)", field: "Content-Type")
        }
        let offset: Int
        do throws(TusHeaderError) {
            offset = try TusHeaders.parseSize(request.headers[TusRoutes.uploadOffset], header: "Upload-Offset")
        } catch {
            return Self.tusError(.badRequest, error.description, field: error.header)
        }
        guard UploadSession.isValidID(id) else { return Self.tusError(.notFound, "no upload \(id)", field: "id") }
        sweepSoon()
        return try await write(request, id: id, clientOffset: offset, created: false)
    }

    private func tusTerminate(_ id: String) async throws -> Response {
        guard UploadSession.isValidID(id), try await sessions.load(id) != nil else { return Self.tusError(.notFound, "no upload \(id)", field: "id") }
        guard let token = try await sessions.lock(id) else { return Self.tusError(TusRoutes.locked, "upload \(id) is being written by another request", field: "id") }
        defer { Task { await sessions.unlock(id, token: token) } }
        guard let session = try await sessions.load(id) else { return Self.tusError(.notFound, "no upload \(id)", field: "id") }
        guard session.state == .open else {
            return Self.tusError(.conflict, "upload \(id) is complete and belongs to job \(session.jobID): cancel the job (DELETE /v1/jobs/\(session.jobID))", field: "id")
        }
        do {
            try await discard(session, token: token)
        } catch {
            logger.error("cannot terminate an upload", metadata: ["upload": "\(id)", "error": "\(error)"])
            return Self.tusError(.internalServerError, "upload \(id) cannot be removed now; it expires on its own")
        }
        return Response(status: .noContent, headers: Self.tusFields())
    }

    /// Writes a PATCH's (or creation POST's) body at `clientOffset`: under the upload's lock,
    /// sealed into parts and a tail, recorded, and completed when it is the last byte.
    private func write(_ request: Request, id: String, clientOffset: Int, created: Bool) async throws -> Response {
        var checksum: (algorithm: String, digest: [UInt8])?
        if let value = request.headers[TusRoutes.uploadChecksum] {
            do throws(TusHeaderError) { checksum = try TusHeaders.parseChecksum(value) } catch { return Self.tusError(.badRequest, error.description, field: error.header) }
        }
        guard try await sessions.load(id) != nil else { return Self.tusError(.notFound, "no upload \(id)", field: "id") }
        guard let token = try await sessions.lock(id) else {
            return Self.tusError(TusRoutes.locked, "upload \(id) is being written by another request; try again", field: "id")
        }
        defer { Task { await sessions.unlock(id, token: token) } }
        guard var session = try await sessions.load(id) else { return Self.tusError(.notFound, "no upload \(id)", field: "id") }
        if session.state == .open, session.expires <= UploadSessions.now() {
            try? await discard(session, token: token)
            return Self.tusError(.gone, "upload \(id) expired", field: "id")
        }
        guard clientOffset == session.offset else {
            return Self.tusError(.conflict, "Upload-Offset is \(clientOffset); the upload is at \(session.offset)", field: "Upload-Offset", offset: session.offset)
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), clientOffset + length > session.length {
            return Self.tusError(.contentTooLarge, "the body would end at \(clientOffset + length), past Upload-Length \(session.length)", field: "Upload-Length")
        }
        if session.state != .open || session.offset == session.length {
            return tusAnswer(created ? .created : .noContent, try await complete(session, token: token), location: created)
        }
        // Not cancelled with the request: what arrived before a dropped connection is still stored
        // and recorded, so the client resumes from it.
        let (current, wanted) = (session, checksum)
        let outcome = await Task { () async -> Result<UploadSession, WriteFailure> in
            await self.receive(request, session: current, token: token, checksum: wanted)
        }.value
        switch outcome {
        case .success(let written):
            session = written
        case .failure(let failure):
            return Self.tusError(failure.status, failure.message, field: failure.field, offset: failure.offset)
        }
        return tusAnswer(created ? .created : .noContent, session, location: created)
    }

    /// Why a write ended without storing what it should have: the answer's parts.
    struct WriteFailure: Error {
        let status: HTTPResponse.Status
        let message: String
        var field: String?
        var offset: Int?

        init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, offset: Int? = nil) {
            self.status = status
            self.message = message
            self.field = field
            self.offset = offset
        }
    }

    private func receive(_ request: Request, session: UploadSession, token: String, checksum: (algorithm: String, digest: [UInt8])?) async -> Result<UploadSession, WriteFailure> {
        let id = session.id
        let writer: SealedUploadWriter
        do {
            writer = try await stored { try await resume(session, token: token) }
        } catch {
            logger.error("cannot resume an upload", metadata: ["upload": "\(id)", "error": "\(error)"])
            return .failure(WriteFailure(.internalServerError, "upload \(id) cannot be continued", offset: session.offset))
        }
        var clientProblem: WriteFailure?
        do {
            if let checksum {
                let limit = min(TusRoutes.maximumChecksummedBytes, session.length - session.offset)
                if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
                    return .failure(WriteFailure(.contentTooLarge, "a PATCH with Upload-Checksum is checked in memory: at most \(limit) bytes", field: "Upload-Checksum", offset: session.offset))
                }
                var request = request
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: limit)
                } catch is NIOTooManyBytesError {
                    return .failure(WriteFailure(.contentTooLarge, "a PATCH with Upload-Checksum is checked in memory: at most \(limit) bytes", field: "Upload-Checksum", offset: session.offset))
                }
                let bytes = Array(body.readableBytesView)
                let matches = checksum.algorithm == "sha1"
                    ? Digest.sha1Hex(bytes) == Digest.hex(checksum.digest) : Digest.sha256(bytes) == checksum.digest
                guard matches else {
                    return .failure(WriteFailure(TusRoutes.checksumMismatch, "Upload-Checksum does not match the body; nothing was stored", field: "Upload-Checksum", offset: session.offset))
                }
                try await stored { try await writer.append(body) }
            } else {
                var lastRenewal = ContinuousClock.now
                for try await buffer in request.body {
                    guard writer.received + buffer.readableBytes <= session.length else {
                        clientProblem = WriteFailure(.contentTooLarge, "the body goes past Upload-Length \(session.length)", field: "Upload-Length")
                        break
                    }
                    try await stored { try await writer.append(buffer) }
                    if ContinuousClock.now - lastRenewal > sessions.lockTTL / 3 {
                        guard try await sessions.renew(id, token: token) else { throw UploadSessions.Failure.lockLost }
                        lastRenewal = .now
                    }
                }
            }
        } catch let failure as UploadSessions.Failure {
            return .failure(Self.lost(failure, id))
        } catch let failure as UploadStoreFailure {
            logger.error("cannot store an upload's bytes", metadata: ["upload": "\(id)", "error": "\(failure)"])
            return .failure(WriteFailure(.internalServerError, "the upload's bytes cannot be stored now; resume from the offset a HEAD reports"))
        } catch {
            // The body stopped arriving (a dropped connection): keep what came.
            logger.info("upload body ended early", metadata: ["upload": "\(id)", "received": "\(writer.received)", "error": "\(error)"])
        }
        do {
            try await stored { try await writer.keepTail() }
            var current = session
            current.progress = writer.progress
            if writer.durable == session.length {
                current = try await complete(current, token: token, writer: writer)
            }
            if let clientProblem { return .failure(clientProblem) }
            return .success(try await sessions.load(id) ?? current)
        } catch let failure as UploadSessions.Failure {
            return .failure(Self.lost(failure, id))
        } catch {
            logger.error("cannot store an upload's bytes", metadata: ["upload": "\(id)", "error": "\(error)"])
            return .failure(WriteFailure(.internalServerError, "the upload's bytes cannot be stored now; resume from the offset a HEAD reports"))
        }
    }

    private static func lost(_ failure: UploadSessions.Failure, _ id: String) -> WriteFailure {
        switch failure {
        case .lockLost: WriteFailure(.conflict, "upload \(id) was taken over by another request; HEAD it for the offset", field: "id")
        case .gone: WriteFailure(.gone, "upload \(id) was terminated or expired", field: "id")
        }
    }
}
