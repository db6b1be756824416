import Foundation
import Jobs
import Logging
import Metrics
import NIOCore
import Redis
import Store
import Vault

/// The steps of a resumable upload behind the tus routes: continue writing one (from its record
/// and stored tail), complete it and enqueue its job exactly once, expire or terminate it. Every
/// step that writes runs under the upload's lock (``UploadSessions``).
extension JobAPI {
    /// A writer continuing `session` from its durable offset, recording each stored step under
    /// `token` and pushing its expiry forward.
    func resume(_ session: UploadSession, token: String) async throws -> SealedUploadWriter {
        let sealer = try SealedChunkSealer(header: session.header, keyring: keyring, expectedUploadID: session.id)
        var tail: [UInt8] = []
        let progress = session.progress
        if progress.tailGeneration > 0 {
            let maximum = session.chunksPerPart * session.chunkSize + 64
            guard let sealed = try await uploads.readTail(session.id, generation: progress.tailGeneration, maximumBytes: maximum) else {
                throw StoreError("upload \(session.id): its stored tail (generation \(progress.tailGeneration)) is missing")
            }
            tail = try sealer.openTail(sealed, context: SealedUploadWriter.tailContext(progress.sealedChunks, progress.tailGeneration))
            guard tail.count == progress.tailLength else {
                throw StoreError("upload \(session.id): its stored tail holds \(tail.count) bytes, the record says \(progress.tailLength)")
            }
        }
        let sessions = self.sessions
        let lifetime = configuration.uploadLifetime
        return SealedUploadWriter(
            id: session.id, target: uploads, sealer: sealer, handle: session.handle, chunksPerPart: session.chunksPerPart,
            progress: progress, tail: tail,
            // The fencing check before every store write: a request that lost the lock stores nothing more.
            fence: { guard try await sessions.renew(session.id, token: token) else { throw UploadSessions.Failure.lockLost } }
        ) { progress in
            var next = session
            next.progress = progress
            next.expires = UploadSessions.now() + lifetime.milliseconds
            try await sessions.save(next, token: token)
        }
    }

    /// Completes an upload whose bytes are all durable: the sealed file is made whole in the store
    /// (unless an earlier attempt did), then its job is enqueued with the id chosen at creation, so
    /// a repeat after a crash finds the job instead of making a second. Returns the record as it
    /// ends, `.enqueued`.
    func complete(_ session: UploadSession, token: String, writer: SealedUploadWriter? = nil) async throws -> UploadSession {
        var session = session
        if session.state == .open {
            guard session.offset == session.length else { return session }
            let size = SealedSource.sealedSize(plaintextSize: session.length, chunkSize: session.chunkSize, uploadIDLength: session.id.utf8.count)
            if try await stored({ try await uploads.storedSize(session.id) }) != size {
                let writer = try await stored { if let writer { writer } else { try await resume(session, token: token) } }
                _ = try await stored { try await writer.finish() }
            }
            session.state = .sealed
            try await sessions.save(session, token: token)
        }
        if session.state == .sealed {
            var spec: JobSpec
            do {
                spec = try JobSpec.parse(session.spec)
            } catch {
                throw StoreError("upload \(session.id): its recorded job does not parse: \(error)")
            }
            spec.id = session.jobID
            do {
                let enqueued = try await submit(spec, source: "tus")
                session.jobID = enqueued.jobID
            } catch {
                // EXISTS: enqueued by an attempt that stopped before recording it.
                guard let redis = error as? RedisError, case .server(let message) = redis, message.hasPrefix("EXISTS") else { throw error }
            }
            session.state = .enqueued
            try await sessions.save(session, token: token)
            Counter(label: "streamgate_uploads_total").increment()
            Counter(label: "streamgate_upload_bytes_total").increment(by: session.length)
            try? await uploads.removeTails(session.id)
        }
        return session
    }

    /// Removes an unfinished upload: its stored parts, its tail and its record. Under the lock.
    func discard(_ session: UploadSession, token: String) async throws {
        try await stored { try await uploads.abort(session.id, handle: session.handle) }
        try? await uploads.removeTails(session.id)
        try await sessions.remove(session.id, token: token)
    }

    /// An open upload past its expiry, found by a request or the sweep: removed by whoever takes
    /// its lock. True when it was removed here.
    @discardableResult
    func expire(_ session: UploadSession) async -> Bool {
        guard session.state == .open, let token = try? await sessions.lock(session.id, patience: .zero) else { return false }
        defer { Task { await sessions.unlock(session.id, token: token) } }
        // Read again under the lock: a write may have pushed the expiry since.
        guard let current = try? await sessions.load(session.id), current.state == .open, current.expires <= UploadSessions.now() else { return false }
        do {
            try await discard(current, token: token)
            logger.info("expired upload removed", metadata: ["upload": "\(current.id)", "offset": "\(current.offset)"])
            return true
        } catch {
            logger.warning("cannot remove an expired upload", metadata: ["upload": "\(current.id)", "error": "\(error)"])
            return false
        }
    }

    /// Removes up to `limit` uploads whose expiry has passed (their parts and tails, then their
    /// records); returns how many. Every origin runs it now and then (``sweepSoon()``).
    @discardableResult
    public func sweepExpiredUploads(limit: Int = 100) async -> Int {
        guard let ids = try? await sessions.expired(now: UploadSessions.now(), limit: limit) else { return 0 }
        var removed = 0
        for id in ids {
            let session: UploadSession?
            do { session = try await sessions.load(id) } catch { continue }
            guard let session else {
                // The record is gone (evicted, or its TTL passed first): what a folder holds of the
                // upload can still be found by name; a bucket's parts wait for its lifecycle rule.
                try? await uploads.removeTails(id)
                try? await uploads.abort(id, handle: "")
                try? await sessions.forget(id)
                continue
            }
            guard session.state == .open else {
                // Completed: its file belongs to its job; only the index entry is left.
                try? await sessions.forget(id)
                continue
            }
            if await expire(session) { removed += 1 }
        }
        return removed
    }

    /// Starts a sweep in the background when this origin has not swept for a minute.
    func sweepSoon() {
        let now = UploadSessions.now()
        let due = lastSweep.withLockedValue { last -> Bool in
            guard now - last >= 60_000 else { return false }
            last = now
            return true
        }
        if due { Task { await sweepExpiredUploads() } }
    }
}
