import Store
import Vault
import Redis

// A split transcode in the queue: its chunks are jobs of their own, and what the splitting job
// and its parts must remember across attempts is recorded on their records under their leases.

extension JobQueue {
    /// What a split transcode records on a job, under its lease.
    public enum SplitField: String, Sendable, CaseIterable {
        /// The splitting job's plan (``SplitPlan`` as JSON).
        case plan = "split_plan"
        /// Where its parts write (``SharedStaging/share``).
        case share = "split_share"
        /// The audio part's manifest, once encoded (``PartManifest`` as JSON).
        case audio = "split_audio"
        /// A part's own manifest, recorded just before it succeeds.
        case part
    }

    /// The id of chunk `index` of `parent`: derived, so an attempt that resumes the split finds the
    /// chunks an earlier one enqueued. A parent id too long to extend is hashed.
    public static func chunkID(parent: String, index: Int) -> String {
        let suffix = "-c\(index)"
        if parent.utf8.count + suffix.utf8.count <= 64 { return parent + suffix }
        return "s" + Digest.hex(Digest.sha256(Array(parent.utf8))).prefix(40) + suffix
    }

    /// Enqueues one chunk of a split transcode; false when it exists already (enqueued by an
    /// earlier attempt of its parent).
    @discardableResult
    public func enqueueChunk(_ spec: JobSpec) async throws -> Bool {
        guard spec.kind == .chunk, spec.id != nil else { throw JobError.invalidField("kind", "only a chunk with an id is enqueued here") }
        try spec.validate()
        let id = spec.id!
        let priority = spec.priority ?? .normal
        do {
            let reply = try await eval(
                Scripts.enqueue,
                keys: [keys.job(id), keys.stream(priority), keys.index, keys.idempotency("-"), keys.events],
                arguments: [
                    id, spec.json(), priority.rawValue, String(Self.now()), String(spec.maxAttempts ?? JobSpec.defaultMaxAttempts),
                    spec.assetID ?? "", "0", String(idempotencySeconds), String(eventsMaxLength), String(indexMaxLength),
                ],
                durable: true
            )
            return reply.array?.first?.int == 1
        } catch {
            if (error as RedisError).serverCode == "EXISTS" { return false }
            throw error
        }
    }

    /// Records `fields` on the job under its lease (and renews it); `.lost` records nothing.
    public func record(_ fields: [SplitField: String], lease: Lease, consumer: String) async throws(RedisError) -> LeaseStatus {
        var arguments = [lease.token, keys.group, consumer, lease.entry, String(Self.now())]
        for (field, value) in fields.sorted(by: { $0.key.rawValue < $1.key.rawValue }) { arguments += [field.rawValue, value] }
        let reply = try await eval(Scripts.record, keys: [keys.job(lease.jobID), lease.stream], arguments: arguments, durable: true)
        return Self.leaseStatus(reply)
    }

    /// Fields of several jobs' records in one round trip: for each id, the values of `names` in
    /// order (nil where the record or the field is missing).
    public func fields(_ names: [String], ofJobs ids: [String]) async throws(RedisError) -> [[String?]] {
        guard !ids.isEmpty else { return [] }
        let replies = try await redis.pipeline(ids.map { ["HMGET", keys.job($0)] + names })
        return replies.map { reply in
            let values = reply.array ?? []
            return names.indices.map { $0 < values.count ? values[$0].text : nil }
        }
    }
}
