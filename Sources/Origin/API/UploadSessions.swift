import Foundation
import Redis
import Vault

/// The Redis keys of resumable uploads.
extension Keyspace {
    /// One upload's record (a hash).
    public func upload(_ id: String) -> String { "\(tag):upload:\(id)" }
    /// The lock of one upload: the token of the request writing it.
    public func uploadLock(_ id: String) -> String { "\(tag):upload:\(id):lock" }
    /// Unfinished uploads scored by when they expire (ms): what the sweep reads.
    public var uploadExpiries: String { "\(tag):uploads:expiring" }
}

/// One resumable upload as Redis records it: enough for any origin to continue it. The data key
/// is in ``header`` only wrapped by the master key.
struct UploadSession: Sendable, Equatable {
    enum State: String, Sendable {
        /// Bytes still arrive.
        case open
        /// The sealed file is complete in the store; its job is not yet enqueued.
        case sealed
        /// Its job is enqueued (``jobID``): the sealed file is the job's now.
        case enqueued
    }

    var id: String
    var length: Int
    var chunkSize: Int
    var chunksPerPart: Int
    /// The sealed-source header (the wrapped data key in it).
    var header: [UInt8]
    /// The store's handle of the upload (a multipart upload id; empty for a folder).
    var handle: String
    var progress: SealedProgress
    /// When it expires, in ms since 1970.
    var expires: Int64
    /// The job to enqueue when the last byte arrives (JSON, its id chosen at creation).
    var spec: String
    var jobID: String
    var state: State

    /// The durable offset: what `Upload-Offset` says.
    var offset: Int { progress.sealedChunks * chunkSize + progress.tailLength }

    var fields: [String] {
        [
            "length", String(length), "chunk", String(chunkSize), "per_part", String(chunksPerPart),
            "header", Data(header).base64EncodedString(), "handle", handle,
            "sealed_chunks", String(progress.sealedChunks), "tags", progress.partTags.joined(separator: "\n"),
            "tail_generation", String(progress.tailGeneration), "tail_length", String(progress.tailLength),
            "offset", String(offset), "expires", String(expires), "spec", spec, "job", jobID, "state", state.rawValue,
        ]
    }

    init(
        id: String, length: Int, chunkSize: Int, chunksPerPart: Int, header: [UInt8], handle: String, progress: SealedProgress,
        expires: Int64, spec: String, jobID: String, state: State
    ) {
        self.id = id
        self.length = length
        self.chunkSize = chunkSize
        self.chunksPerPart = chunksPerPart
        self.header = header
        self.handle = handle
        self.progress = progress
        self.expires = expires
        self.spec = spec
        self.jobID = jobID
        self.state = state
    }

    /// Reads a record; nil when a field is missing or malformed (a record StreamGate did not write).
    init?(id: String, _ map: [String: String]) {
        func int(_ name: String) -> Int? { map[name].flatMap { Int($0) } }
        guard let length = int("length"), let chunk = int("chunk"), let perPart = int("per_part"),
              let header = map["header"].flatMap({ Data(base64Encoded: $0) }), let handle = map["handle"],
              let sealed = int("sealed_chunks"), let tags = map["tags"], let generation = int("tail_generation"),
              let tail = int("tail_length"), let expires = map["expires"].flatMap({ Int64($0) }), let spec = map["spec"],
              let job = map["job"], let state = map["state"].flatMap(State.init(rawValue:))
        else { return nil }
        self.init(
            id: id, length: length, chunkSize: chunk, chunksPerPart: perPart, header: [UInt8](header), handle: handle,
            progress: SealedProgress(
                sealedChunks: sealed, partTags: tags.isEmpty ? [] : tags.split(separator: "\n").map(String.init),
                tailGeneration: generation, tailLength: tail
            ),
            expires: expires, spec: spec, jobID: job, state: state
        )
    }

    /// Upload ids the API makes: `u` and base32, like job ids.
    static func isValidID(_ id: String) -> Bool {
        id.utf8.count >= 2 && id.utf8.count <= 64 && id.first == "u"
            && id.utf8.allSatisfy { (48...57).contains($0) || (97...122).contains($0) || (65...90).contains($0) }
    }
}

/// Resumable uploads' records in Redis, and the per-upload lock that lets one request at a time
/// write an upload, whichever origin it reached.
///
/// A writer holds the lock (`SET NX PX`, a random token) and every record it writes is fenced: the
/// write happens only while the lock still holds its token, so a request that stalled past its
/// lock cannot overwrite what the next holder recorded. A record outlives its expiry by
/// ``retention``, so whoever finds it expired can still find its stored parts to remove.
struct UploadSessions: Sendable {
    let redis: RedisClient
    let keys: Keyspace
    /// How long a lock holds without a write: a request renews it as it stores.
    var lockTTL: Duration = .seconds(30)
    /// How long a record is kept after its upload expires.
    var retention: Int64 = 24 * 3600 * 1000

    enum Failure: Error, Equatable {
        /// Another request holds the upload's lock now.
        case lockLost
        /// The record is gone (expired, terminated).
        case gone
    }

    private static let create = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('HSET', KEYS[1], unpack(ARGV, 4))
        redis.call('PEXPIREAT', KEYS[1], ARGV[1])
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
        return 1
        """)

    private static let commit = RedisScript("""
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('LOCKLOST the upload is held by another request') end
        if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('GONE the upload record is gone') end
        redis.call('HSET', KEYS[1], unpack(ARGV, 6))
        redis.call('PEXPIREAT', KEYS[1], ARGV[3])
        if ARGV[4] == '' then redis.call('ZREM', KEYS[3], ARGV[5]) else redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5]) end
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
        return 1
        """)

    private static let renew = RedisScript("""
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        """)

    private static let unlock = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)

    private static let remove = RedisScript("""
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('LOCKLOST the upload is held by another request') end
        redis.call('DEL', KEYS[1], KEYS[2])
        redis.call('ZREM', KEYS[3], ARGV[2])
        return 1
        """)

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Records a new upload; false when the id exists.
    func create(_ session: UploadSession) async throws -> Bool {
        let arguments = [String(session.expires + retention), String(session.expires), session.id] + session.fields
        let reply = try await redis.eval(
            Self.create, keys: [keys.upload(session.id), keys.uploadExpiries], arguments: arguments.map { Array($0.utf8) }, durable: true
        )
        return reply.int == 1
    }

    func load(_ id: String) async throws -> UploadSession? {
        let map = try await redis.send(["HGETALL", keys.upload(id)]).fieldMap
        guard !map.isEmpty else { return nil }
        return UploadSession(id: id, map)
    }

    /// Takes the upload's lock, waiting up to `patience` for a request that holds it; the token,
    /// or nil when it is still held.
    func lock(_ id: String, patience: Duration = .seconds(2)) async throws -> String? {
        let token = Digest.hex(try SecureRandom.bytes(16))
        let deadline = ContinuousClock.now + patience
        while true {
            let reply = try await redis.send(["SET", keys.uploadLock(id), token, "NX", "PX", String(lockTTL.milliseconds)])
            if !reply.isNull { return token }
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Extends the lock while a request still holds it; false when it does not.
    func renew(_ id: String, token: String) async throws -> Bool {
        let reply = try await redis.eval(Self.renew, keys: [keys.uploadLock(id)], arguments: [Array(token.utf8), Array(String(lockTTL.milliseconds).utf8)])
        return reply.int == 1
    }

    func unlock(_ id: String, token: String) async {
        _ = try? await redis.eval(Self.unlock, keys: [keys.uploadLock(id)], arguments: [Array(token.utf8)])
    }

    /// Writes the record, only while `token` holds the lock (renewing it). An upload that is no
    /// longer open leaves the expiry index.
    func save(_ session: UploadSession, token: String) async throws {
        let expiry = session.state == .open ? String(session.expires) : ""
        let arguments = [token, String(lockTTL.milliseconds), String(session.expires + retention), expiry, session.id] + session.fields
        do {
            _ = try await redis.eval(
                Self.commit, keys: [keys.upload(session.id), keys.uploadLock(session.id), keys.uploadExpiries],
                arguments: arguments.map { Array($0.utf8) }, durable: true
            )
        } catch {
            throw Self.classify(error)
        }
    }

    /// A script's refusal as a ``Failure``; any other error as it is.
    static func classify(_ error: any Error) -> any Error {
        guard let redis = error as? RedisError, case .server(let message) = redis else { return error }
        if message.hasPrefix("LOCKLOST") { return Failure.lockLost }
        if message.hasPrefix("GONE") { return Failure.gone }
        return error
    }

    /// Removes the record and the lock, only while `token` holds it.
    func remove(_ id: String, token: String) async throws {
        do {
            _ = try await redis.eval(
                Self.remove, keys: [keys.upload(id), keys.uploadLock(id), keys.uploadExpiries], arguments: [Array(token.utf8), Array(id.utf8)]
            )
        } catch {
            throw Self.classify(error)
        }
    }

    /// Uploads whose expiry has passed, oldest first, at most `limit`.
    func expired(now: Int64, limit: Int) async throws -> [String] {
        let reply = try await redis.send(["ZRANGEBYSCORE", keys.uploadExpiries, "-inf", String(now), "LIMIT", "0", String(limit)])
        return (reply.array ?? []).compactMap(\.text)
    }

    /// Forgets an id in the expiry index (its record is gone or no longer open).
    func forget(_ id: String) async throws {
        try await redis.send(["ZREM", keys.uploadExpiries, id])
    }
}

extension Duration {
    /// Whole milliseconds, at least 1.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
