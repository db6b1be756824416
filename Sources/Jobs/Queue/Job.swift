import Foundation
import Store
import Traces

/// What a job asks for: the `job` field of its stream entry, as JSON.
///
/// A service in any language enqueues with `XADD {sg}:jobs:normal * job '{"source":"/in.mp4"}'`;
/// see `docs/jobs.md`.
public struct JobSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// Transcode `source` into an encrypted ladder and publish it as `asset_id`.
        case transcode
        /// Does nothing and succeeds: for measuring the queue itself.
        case noop
        /// One chunk of a split transcode (`parent`): the video renditions of `source` from
        /// `chunk_start` to `chunk_end`, written into the parent's version (`share`). Enqueued only
        /// by the worker that splits the upload.
        case chunk
    }

    /// The job id; when a plain XADD leaves it out, the stream entry id is used.
    public var id: String?
    public var kind: Kind
    /// The input file's path, as the workers see it.
    public var source: String?
    /// A profile name (`default` → `profiles/default.yaml` in the workers' profile folder) or path.
    public var profile: String?
    /// The asset to publish; random when left out.
    public var assetID: String?
    public var priority: JobPriority?
    /// Receives a signed JSON POST on every state change.
    public var callbackURL: String?
    public var idempotencyKey: String?
    /// Attempts before the job is dead-lettered (default 3).
    public var maxAttempts: Int?
    /// Seconds a transcode may run before it is killed and retried.
    public var timeoutSeconds: Double?
    /// The source is an upload StreamGate stored encrypted; it is deleted after a successful
    /// publish unless `keep_source` is true.
    public var sourceEncrypted: Bool?
    public var keepSource: Bool?
    /// The poster's instant, seconds from the start (default: a tenth in, at most 10 s).
    public var posterTime: Double?
    /// A chunk's: the job that split the upload, the chunk's number, its stretch of the source
    /// (seconds; no end for the last) and where it writes (``SplitStorage``'s share).
    public var parent: String?
    public var chunk: Int?
    public var chunkStart: Double?
    public var chunkEnd: Double?
    public var share: String?
    /// The trace the job belongs to (W3C `traceparent`, `tracestate`): set by whoever enqueues it
    /// while traced, so every attempt's spans join the trace of the request that made the job.
    public var traceparent: String?
    public var tracestate: String?

    /// The sealed upload to delete once the job has ended, whichever way it ended; nil when the
    /// source is not an upload, or the job asked to keep it.
    public var sealedUploadToRemove: String? {
        sourceEncrypted == true && keepSource != true ? source : nil
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, source, profile, assetID = "asset_id", priority, callbackURL = "callback_url"
        case idempotencyKey = "idempotency_key", maxAttempts = "max_attempts", timeoutSeconds = "timeout_s"
        case sourceEncrypted = "source_encrypted", keepSource = "keep_source", posterTime = "poster_time"
        case parent, chunk, chunkStart = "chunk_start", chunkEnd = "chunk_end", share, traceparent, tracestate
    }

    public init(
        id: String? = nil, kind: Kind = .transcode, source: String? = nil, profile: String? = nil, assetID: String? = nil,
        priority: JobPriority? = nil, callbackURL: String? = nil, idempotencyKey: String? = nil, maxAttempts: Int? = nil,
        timeoutSeconds: Double? = nil, sourceEncrypted: Bool? = nil, keepSource: Bool? = nil, posterTime: Double? = nil
    ) {
        self.id = id
        self.kind = kind
        self.source = source
        self.profile = profile
        self.assetID = assetID
        self.priority = priority
        self.callbackURL = callbackURL
        self.idempotencyKey = idempotencyKey
        self.maxAttempts = maxAttempts
        self.timeoutSeconds = timeoutSeconds
        self.sourceEncrypted = sourceEncrypted
        self.keepSource = keepSource
        self.posterTime = posterTime
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decodeIfPresent(String.self, forKey: .id)
        kind = try container.decodeIfPresent(Kind.self, forKey: .kind) ?? .transcode
        source = try container.decodeIfPresent(String.self, forKey: .source)
        profile = try container.decodeIfPresent(String.self, forKey: .profile)
        assetID = try container.decodeIfPresent(String.self, forKey: .assetID)
        priority = try container.decodeIfPresent(JobPriority.self, forKey: .priority)
        callbackURL = try container.decodeIfPresent(String.self, forKey: .callbackURL)
        idempotencyKey = try container.decodeIfPresent(String.self, forKey: .idempotencyKey)
        maxAttempts = try container.decodeIfPresent(Int.self, forKey: .maxAttempts)
        timeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .timeoutSeconds)
        sourceEncrypted = try container.decodeIfPresent(Bool.self, forKey: .sourceEncrypted)
        keepSource = try container.decodeIfPresent(Bool.self, forKey: .keepSource)
        posterTime = try container.decodeIfPresent(Double.self, forKey: .posterTime)
        parent = try container.decodeIfPresent(String.self, forKey: .parent)
        chunk = try container.decodeIfPresent(Int.self, forKey: .chunk)
        chunkStart = try container.decodeIfPresent(Double.self, forKey: .chunkStart)
        chunkEnd = try container.decodeIfPresent(Double.self, forKey: .chunkEnd)
        share = try container.decodeIfPresent(String.self, forKey: .share)
        traceparent = try container.decodeIfPresent(String.self, forKey: .traceparent)
        tracestate = try container.decodeIfPresent(String.self, forKey: .tracestate)
    }

    public static let defaultMaxAttempts = 3

    /// Checks what a worker needs before it starts; the error names the field.
    ///
    /// With `callbackPolicy` (when enqueueing), a callback URL whose host is a literal address must
    /// be one the policy allows; a host name can only be judged once resolved, by the sender.
    public func validate(callbackPolicy: OutboundAddressPolicy? = nil) throws(JobError) {
        if let id, !JobID.isValid(id) { throw .invalidField("id", "must be 1-64 of [A-Za-z0-9_-], got '\(id.prefix(80))'") }
        if let maxAttempts, !(1...100).contains(maxAttempts) { throw .invalidField("max_attempts", "must be 1…100, got \(maxAttempts)") }
        if let timeoutSeconds, !(timeoutSeconds > 0) { throw .invalidField("timeout_s", "must be positive") }
        if let posterTime, !(posterTime >= 0 && posterTime.isFinite) { throw .invalidField("poster_time", "must be seconds from the start, 0 or more") }
        if let assetID, !JobID.isValid(assetID) {
            throw .invalidField("asset_id", "must be 1-64 of [A-Za-z0-9_-] starting with a letter or digit, got '\(assetID.prefix(80))'")
        }
        if let callbackURL {
            let url: CallbackURL
            do { url = try CallbackURL(callbackURL) } catch { throw .invalidField("callback_url", error.reason) }
            if let callbackPolicy, case .refused(let why)? = url.literalVerdict(callbackPolicy) {
                throw .invalidField("callback_url", "must reach a public address: \(why) (an operator can allow it with --webhook-allow)")
            }
        }
        if let traceparent, !TraceContext.isValid(traceparent: traceparent) {
            throw .invalidField("traceparent", "must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
        }
        if let tracestate, !TraceContext.isValid(tracestate: tracestate) {
            throw .invalidField("tracestate", "must be at most 512 bytes of printable ASCII")
        }
        if let idempotencyKey, idempotencyKey.isEmpty || idempotencyKey.utf8.count > 200 {
            throw .invalidField("idempotency_key", "must be 1-200 bytes")
        }
        switch kind {
        case .noop: break
        case .transcode, .chunk:
            guard let source, !source.isEmpty else { throw .missingField("source") }
            if source.utf8.contains(0) { throw .invalidField("source", "contains a NUL byte") }
        }
        guard kind == .chunk else { return }
        guard let parent else { throw .missingField("parent") }
        guard JobID.isValid(parent) else { throw .invalidField("parent", "must be a job id") }
        guard assetID != nil else { throw .missingField("asset_id") }
        guard let chunk, (0..<SplitPlan.maxChunks).contains(chunk) else { throw .invalidField("chunk", "must be 0…\(SplitPlan.maxChunks - 1)") }
        guard let chunkStart, chunkStart.isFinite, chunkStart >= 0 else { throw .invalidField("chunk_start", "must be seconds from the start, 0 or more") }
        if let chunkEnd, !(chunkEnd.isFinite && chunkEnd > chunkStart) { throw .invalidField("chunk_end", "must be after chunk_start") }
        guard let share, !share.isEmpty, share.utf8.count <= 4096, !share.utf8.contains(0) else { throw .invalidField("share", "must name the version the chunk writes into") }
    }

    /// Compact JSON with sorted keys, as the queue stores a job. Written by hand: a worker writes
    /// one per job it takes, and Foundation's encoder cost more than the queue's Redis work.
    public func json() -> String {
        var out = "{"
        func field(_ key: String, _ value: String?) {
            guard let value else { return }
            if out.utf8.count > 1 { out += "," }
            out += "\"" + key + "\":" + value
        }
        field("asset_id", assetID.map(Self.quoted))
        field("callback_url", callbackURL.map(Self.quoted))
        field("chunk", chunk.map { String($0) })
        field("chunk_end", chunkEnd.flatMap { $0.isFinite ? "\($0)" : nil })
        field("chunk_start", chunkStart.flatMap { $0.isFinite ? "\($0)" : nil })
        field("id", id.map(Self.quoted))
        field("idempotency_key", idempotencyKey.map(Self.quoted))
        field("keep_source", keepSource.map { $0 ? "true" : "false" })
        field("kind", Self.quoted(kind.rawValue))
        field("max_attempts", maxAttempts.map { String($0) })
        field("parent", parent.map(Self.quoted))
        field("poster_time", posterTime.flatMap { $0.isFinite ? "\($0)" : nil })
        field("priority", priority.map { Self.quoted($0.rawValue) })
        field("profile", profile.map(Self.quoted))
        field("share", share.map(Self.quoted))
        field("source", source.map(Self.quoted))
        field("source_encrypted", sourceEncrypted.map { $0 ? "true" : "false" })
        // A number JSON cannot write (validate refuses them) is left out rather than written wrong.
        field("timeout_s", timeoutSeconds.flatMap { $0.isFinite ? "\($0)" : nil })
        field("traceparent", traceparent.map(Self.quoted))
        field("tracestate", tracestate.map(Self.quoted))
        return out + "}"
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static let jsonSpace: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]

    /// Parses a `job` field; the error says what is wrong with it.
    public static func parse(_ text: String) throws(JobError) -> JobSpec {
        // One parse: the decoder's own errors at the top level (not an object, not JSON) say the same.
        let notAnObject = JobError.malformed("the job field is not a JSON object")
        guard text.utf8.first(where: { !Self.jsonSpace.contains($0) }) == UInt8(ascii: "{") else { throw notAnObject }
        do {
            return try JSONDecoder().decode(JobSpec.self, from: Data(text.utf8))
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw notAnObject
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            throw notAnObject
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            throw .invalidField(context.codingPath.map(\.stringValue).joined(separator: "."), "has the wrong type")
        } catch DecodingError.dataCorrupted(let context) {
            throw .invalidField(context.codingPath.map(\.stringValue).joined(separator: "."), context.debugDescription)
        } catch {
            throw .malformed("\(error)")
        }
    }
}

/// Job ids share the asset id grammar: they appear in keys and URLs.
public enum JobID {
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.enumerated().allSatisfy { offset, byte in
            let alphanumeric = (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
            return alphanumeric || (offset > 0 && (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")))
        }
    }

    /// A new id: `j` and 19 lowercase base-32 characters.
    public static func random() -> String {
        "j" + AssetID.randomBase32(count: 19)
    }
}

/// Where a job is in its life.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, running, retrying, succeeded, failed, dead, cancelled

    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .dead, .cancelled: true
        case .queued, .running, .retrying: false
        }
    }
}

/// A job's record, as stored in its hash.
public struct JobRecord: Sendable, Equatable, Codable {
    public var id: String
    public var state: JobState
    public var spec: JobSpec?
    public var attempts: Int
    public var maxAttempts: Int
    public var priority: JobPriority
    public var assetID: String?
    public var version: String?
    public var error: String?
    public var worker: String?
    public var progress: Double?
    public var stage: String?
    public var fps: Double?
    public var speed: Double?
    public var etaSeconds: Double?
    public var cancelRequested: Bool
    /// Milliseconds since the epoch.
    public var createdAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    /// When the job's version was first shown, still growing (milliseconds since 1970).
    public var playableAt: Int64?
    /// The version shown while it grew.
    public var playableVersion: String?
    public var updatedAt: Int64?
    public var nextAttemptAt: Int64?

    enum CodingKeys: String, CodingKey {
        case id, state, spec, attempts, maxAttempts = "max_attempts", priority, assetID = "asset_id", version, error, worker
        case progress, stage, fps, speed, etaSeconds = "eta_s", cancelRequested = "cancel_requested"
        case createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at", updatedAt = "updated_at"
        case nextAttemptAt = "next_attempt_at", playableAt = "playable_at", playableVersion = "playable_version"
    }

    /// Reads a job hash (HGETALL); nil when it is empty.
    init?(id: String, fields: [String: String]) {
        guard let stateText = fields["state"] else { return nil }
        self.id = id
        state = JobState(rawValue: stateText) ?? .queued
        spec = fields["spec"].flatMap { try? JobSpec.parse($0) }
        attempts = fields["attempts"].flatMap { Int($0) } ?? 0
        maxAttempts = fields["max_attempts"].flatMap { Int($0) } ?? JobSpec.defaultMaxAttempts
        priority = fields["priority"].flatMap { JobPriority(rawValue: $0) } ?? .normal
        assetID = fields["asset_id"].flatMap { $0.isEmpty ? nil : $0 }
        version = fields["version"].flatMap { $0.isEmpty ? nil : $0 }
        error = fields["error"].flatMap { $0.isEmpty ? nil : $0 }
        worker = fields["worker"].flatMap { $0.isEmpty ? nil : $0 }
        progress = fields["progress"].flatMap { Double($0) }
        stage = fields["stage"].flatMap { $0.isEmpty ? nil : $0 }
        fps = fields["fps"].flatMap { Double($0) }
        speed = fields["speed"].flatMap { Double($0) }
        etaSeconds = fields["eta_s"].flatMap { Double($0) }
        cancelRequested = fields["cancel"] == "1"
        createdAt = fields["created_at"].flatMap { Int64($0) }
        startedAt = fields["started_at"].flatMap { Int64($0) }
        finishedAt = fields["finished_at"].flatMap { Int64($0) }
        updatedAt = fields["updated_at"].flatMap { Int64($0) }
        playableAt = fields["playable_at"].flatMap { Int64($0) }
        playableVersion = fields["playable_version"].flatMap { $0.isEmpty ? nil : $0 }
        nextAttemptAt = fields["next_attempt_at"].flatMap { Int64($0) }
    }
}

/// A job that cannot be taken as it is.
public enum JobError: Error, CustomStringConvertible, Sendable, Equatable {
    case malformed(String)
    case missingField(String)
    case invalidField(String, String)
    case notFound(String)

    public var description: String {
        switch self {
        case .malformed(let reason): "malformed job: \(reason)"
        case .missingField(let field): "field '\(field)' is required"
        case .invalidField(let field, let reason): "field '\(field)' \(reason)"
        case .notFound(let id): "no job \(id)"
        }
    }

    /// The field at fault, for API answers.
    public var field: String? {
        switch self {
        case .missingField(let field), .invalidField(let field, _): field
        default: nil
        }
    }
}

extension JobSpec {
    /// The trace this job joins, when it carries a valid one.
    public var trace: TraceContext? {
        get { traceparent.flatMap { TraceContext(traceparent: $0, tracestate: tracestate) } }
        set {
            traceparent = newValue?.traceparent
            tracestate = newValue?.tracestate
        }
    }
}
