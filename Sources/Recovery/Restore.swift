import Foundation
import Redis
import Store
import Vault

/// `streamgate restore`: a backup back into a store and a Redis. Everything is checked first (the
/// manifest's signature, every object's size and SHA-256, every Redis entry): a truncated or
/// tampered backup is refused before anything is written. Then each asset is published whole, as
/// a transcode would be, the uploads are put back, and the Redis keys are restored in one
/// transaction.
public struct RestoreRun: Sendable {
    public struct Summary: Sendable, Equatable {
        public var name: String
        public var assets: Int
        public var uploads: Int
        public var redisKeys: Int
    }

    let store: any AssetStorage
    let redis: RedisClient?
    let keys: Keyspace
    let keyring: Keyring
    let folder: any BackupTarget
    /// A local folder for stores that stage elsewhere (a bucket's).
    let spool: String

    public init(store: any AssetStorage, redis: RedisClient?, keys: Keyspace, keyring: Keyring, folder: any BackupTarget, spool: String) {
        self.store = store
        self.redis = redis
        self.keys = keys
        self.keyring = keyring
        self.folder = folder
        self.spool = spool
    }

    private func nameOrLatest(_ name: String?) async -> String? {
        if let name { return name }
        return await folder.latest()
    }

    /// Restores backup `name` (nil: the latest).
    public func run(_ name: String? = nil) async throws -> Summary {
        guard let name = await nameOrLatest(name) else { throw BackupError("\(folder.location): no backup here (no 'latest')") }
        let manifest = try await folder.manifest(name, keyring: keyring)
        guard manifest.redisPrefix == keys.prefix else {
            throw BackupError("backup \(name) holds the keys of prefix '\(manifest.redisPrefix)', not '\(keys.prefix)' (--prefix)")
        }
        // Everything checked before anything is written.
        var assets: [AssetID] = []
        for entry in manifest.assets {
            do { assets.append(try AssetID(entry.asset)) } catch { throw BackupError("backup \(name): '\(entry.asset)' is not an asset id") }
            for file in entry.files where !StorePath.isSafeRelative(file.path) {
                throw BackupError("backup \(name): \(entry.asset)/\(file.path) is not a plain relative path")
            }
        }
        for file in manifest.uploads where !StorePath.isSafeRelative(file.path) || file.path.contains("/") {
            throw BackupError("backup \(name): upload \(file.path) is not a plain file name")
        }
        for file in manifest.allFiles { try await folder.verify(file) }
        var entries: [RedisSnapshot.Entry] = []
        if let snapshot = manifest.redis { entries = try RedisSnapshot.entries(try await folder.get(snapshot), keys: keys) }
        if !manifest.uploads.isEmpty, !(store is AssetStore) {
            throw BackupError("backup \(name) holds sealed uploads, which only a folder store keeps here")
        }

        for (asset, entry) in zip(assets, manifest.assets) {
            let staging = try await store.stage(asset, heldBy: "restore-\(name)", spool: spool)
            do {
                for file in entry.files {
                    let path = staging.folder + "/" + file.path
                    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    guard FileManager.default.createFile(atPath: path, contents: Data(try await folder.get(file))) else {
                        throw BackupError("\(path): cannot be written")
                    }
                    try await staging.stored(file.path)
                }
                _ = try await staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: "restore-\(name)")
            } catch {
                await staging.discard()
                throw BackupError("\(asset): not restored: \(error)")
            }
        }
        for file in manifest.uploads {
            try FileManager.default.createDirectory(atPath: store.uploads, withIntermediateDirectories: true)
            let target = store.uploads + "/" + file.path
            let temporary = target + ".restoring"
            try? FileManager.default.removeItem(atPath: temporary)
            try await folder.copy(file, to: temporary)
            guard rename(temporary, target) == 0 else { throw BackupError("\(target): cannot be written") }
        }
        if let redis { try await RedisSnapshot.restore(entries, redis: redis, keys: keys) }
        return Summary(name: name, assets: assets.count, uploads: manifest.uploads.count, redisKeys: redis == nil ? 0 : entries.count)
    }
}
