import Foundation
import Vault

/// What one backup holds: every published asset's current version file by file, the sealed
/// uploads queued jobs still need, and a snapshot of the Redis state that matters, each file by
/// its SHA-256 in the backup folder's objects. Signed with a key derived from the master key, so a
/// manifest that was edited, or swapped for another deployment's, is refused.
public struct BackupManifest: Codable, Sendable, Equatable {
    public static let currentFormat = 1

    /// One file: where it goes and what its bytes must hash to.
    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var size: Int
    }

    public struct Asset: Codable, Sendable, Equatable {
        public var asset: String
        /// The version's name in the store that was backed up.
        public var version: String
        public var files: [File]
    }

    public var format: Int
    /// `b<UTC yyyyMMddTHHmmss>Z-<hex>`: sorts by time.
    public var name: String
    public var created: String
    /// The backup this one added to (its objects were already there).
    public var previous: String?
    /// The master key whose derived key signs this manifest.
    public var masterKeyID: String
    /// The Redis key prefix (hash tag) the snapshot was taken under.
    public var redisPrefix: String
    public var assets: [Asset]
    /// Sealed uploads, relative to the store's uploads folder.
    public var uploads: [File]
    /// The Redis snapshot (``RedisSnapshot``), when one was taken.
    public var redis: File?

    enum CodingKeys: String, CodingKey {
        case format, name, created, previous, masterKeyID = "master_key_id", redisPrefix = "redis_prefix", assets, uploads, redis
    }

    /// Every file the backup needs, assets' first.
    public var allFiles: [File] { assets.flatMap(\.files) + uploads + (redis.map { [$0] } ?? []) }

    /// The manifest as stored: sorted-key JSON.
    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    /// The signature of `bytes` (a manifest as stored) under `key`: hex HMAC-SHA256 with a key
    /// derived for backups alone, so it says nothing about the master key's other uses.
    static func signature(of bytes: [UInt8], key: MasterKey) -> String {
        Digest.hex(Digest.hmacSHA256(key: key.derivedKey(for: "backup manifest"), message: bytes))
    }

    /// The manifest `bytes` hold, once `signature` is found right under a key of `keyring`;
    /// else why not.
    static func verified(_ bytes: [UInt8], signature stored: String, keyring: Keyring, file: String, name: String) throws(BackupError) -> BackupManifest {
        let manifest: BackupManifest
        do {
            manifest = try JSONDecoder().decode(BackupManifest.self, from: Data(bytes))
        } catch {
            throw BackupError("\(file): not a backup manifest (\(error))")
        }
        guard manifest.format == currentFormat else { throw BackupError("\(file): format \(manifest.format), this StreamGate reads \(currentFormat)") }
        guard let key = ([keyring.current] + keyring.previous).first(where: { $0.id == manifest.masterKeyID }) else {
            throw BackupError("\(file): signed by master key \(manifest.masterKeyID), which is not in the keyring (add it to \(Keyring.previousKeysEnvironmentVariable))")
        }
        let expected = signature(of: bytes, key: key)
        guard Digest.constantTimeEqual(Array(expected.utf8), Array(stored.trimmingCharacters(in: .whitespacesAndNewlines).utf8)) else {
            throw BackupError("\(file): the signature does not match: the manifest was changed after it was written")
        }
        guard manifest.name == name else { throw BackupError("\(file): names backup \(manifest.name), not \(name)") }
        for file in manifest.allFiles {
            guard file.sha256.utf8.count == 64, file.sha256.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }), file.size >= 0 else {
                throw BackupError("\(file.path): not a SHA-256 and a size in the manifest")
            }
        }
        return manifest
    }
}

extension BackupManifest {
    /// A backup's name is a path component: nothing that could lead elsewhere.
    static func checkName(_ name: String) throws(BackupError) {
        guard !name.isEmpty, name.utf8.count <= 128, !name.hasPrefix("."),
              name.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 || $0 == 95 })
        else { throw BackupError("'\(name.prefix(80))' is not a backup name") }
    }
}

/// Why a backup or a restore cannot go on; names the file and the reason.
public struct BackupError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
