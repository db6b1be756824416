import Foundation
import Redis

/// The Redis state a deployment cannot do without, as `DUMP`s: the queue (job streams, records,
/// retries, dead letters, events, idempotency keys), access policies, token revocations, the
/// farms' worker counts and upload sessions. Left out, because they rebuild themselves or
/// are only worth something now: the shared cache (L2), worker heartbeats, sign-in nonces, the
/// ownership cache and viewer analytics.
///
/// Restored in one `MULTI`/`EXEC` (every key shares the deployment's hash tag, so one node holds
/// them all, in a cluster too): all the keys, or none.
enum RedisSnapshot {
    /// Key families not kept, by what follows the hash tag.
    static let skipped = [":l2:", ":an:", ":worker:", ":siwe:", ":gate:own"]
    static let skippedExactly = [":workers"]

    struct Entry: Codable {
        var key: String
        /// Milliseconds left to live; nil: no expiry.
        var ttl: Int64?
        /// The key's `DUMP`, base64.
        var dump: String
    }

    static func kept(_ key: String, keys: Keyspace) -> Bool {
        guard key.hasPrefix(keys.tag) else { return false }
        let rest = key.dropFirst(keys.tag.count)
        return !skipped.contains { rest.hasPrefix($0) } && !skippedExactly.contains(String(rest))
    }

    /// Every kept key's dump, one JSON line each.
    static func take(redis: RedisClient, keys: Keyspace) async throws -> (lines: [UInt8], count: Int) {
        var cursor = "0"
        var names: Set<String> = []
        repeat {
            let reply = try await redis.send(["SCAN", cursor, "MATCH", keys.tag + ":*", "COUNT", "1000"])
            guard let parts = reply.array, parts.count == 2, let next = parts[0].text else {
                throw BackupError("redis: SCAN answered \(reply)")
            }
            cursor = next
            for name in parts[1].array?.compactMap(\.text) ?? [] where kept(name, keys: keys) { names.insert(name) }
        } while cursor != "0"
        var lines: [UInt8] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var count = 0
        for name in names.sorted() {
            let replies = try await redis.pipeline([["DUMP", name], ["PTTL", name]])
            // Gone between the scan and now: nothing to keep.
            guard case .string(let dump) = replies[0] else { continue }
            let ttl = replies[1].int.flatMap { $0 > 0 ? $0 : nil }
            lines += Array(try encoder.encode(Entry(key: name, ttl: ttl, dump: Data(dump).base64EncodedString()))) + [10]
            count += 1
        }
        return (lines, count)
    }

    /// The entries of a snapshot, each checked to belong to `keys`' deployment.
    static func entries(_ lines: [UInt8], keys: Keyspace) throws(BackupError) -> [Entry] {
        var entries: [Entry] = []
        for (number, line) in lines.split(separator: 10).enumerated() {
            guard let entry = try? JSONDecoder().decode(Entry.self, from: Data(line)), Data(base64Encoded: entry.dump) != nil else {
                throw BackupError("redis snapshot, line \(number + 1): not a key's dump")
            }
            guard entry.key.hasPrefix(keys.tag + ":") else {
                throw BackupError("redis snapshot, line \(number + 1): key \(entry.key.prefix(80)) is not under \(keys.tag)")
            }
            entries.append(entry)
        }
        return entries
    }

    /// Writes every entry back, replacing what is there, in one transaction.
    static func restore(_ entries: [Entry], redis: RedisClient, keys: Keyspace) async throws {
        guard !entries.isEmpty else { return }
        // Routes the connection below to the node of the deployment's slot.
        _ = try await redis.send(["EXISTS", keys.tag + ":restore"])
        var commands: [[[UInt8]]] = [[Array("MULTI".utf8)]]
        for entry in entries {
            let ttl = entry.ttl.map { String(max(1, $0)) } ?? "0"
            commands.append([Array("RESTORE".utf8), Array(entry.key.utf8), Array(ttl.utf8), Array(Data(base64Encoded: entry.dump)!), Array("REPLACE".utf8)])
        }
        commands.append([Array("EXEC".utf8)])
        let transaction = commands
        let replies = try await redis.withConnection { connection throws(RedisError) in try connection.pipeline(bytes: transaction) }
        if let failed = replies.first(where: { if case .error = $0 { true } else { false } }) {
            throw BackupError("redis: the restore was refused, nothing written: \(failed)")
        }
        guard case .array(let results)? = replies.last, results.count == entries.count else {
            throw BackupError("redis: the restore transaction did not run: \(replies.last.map { "\($0)" } ?? "no reply")")
        }
        if let failed = results.first(where: { if case .error = $0 { true } else { false } }) {
            throw BackupError("redis: a key was refused (\(failed)); the others were written")
        }
    }
}
