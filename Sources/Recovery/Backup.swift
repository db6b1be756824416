import Foundation
import Redis
import Store
import Vault

/// `streamgate backup`: the store's published assets (each current version, file by file), the
/// sealed uploads of a folder store, and the Redis snapshot (``RedisSnapshot``) into a
/// ``BackupFolder``. Incremental: a file already in the folder (by its SHA-256) is not written
/// again, and published versions never change, so a second backup writes what is new.
public struct BackupRun: Sendable {
    public struct Summary: Sendable, Equatable {
        public var name: String
        public var assets: Int
        public var files: Int
        /// Objects this backup wrote (the rest were there from earlier backups).
        public var written: Int
        public var bytesWritten: Int
        public var redisKeys: Int
    }

    let store: any VersionFiles
    let redis: RedisClient?
    let keys: Keyspace
    let keyring: Keyring
    let folder: any BackupTarget

    public init(store: any VersionFiles, redis: RedisClient?, keys: Keyspace, keyring: Keyring, folder: any BackupTarget) {
        self.store = store
        self.redis = redis
        self.keys = keys
        self.keyring = keyring
        self.folder = folder
    }

    public func run(now: Date = Date()) async throws -> Summary {
        var summary = Summary(name: Self.name(at: now), assets: 0, files: 0, written: 0, bytesWritten: 0, redisKeys: 0)
        func count(_ put: (file: BackupManifest.File, written: Bool)) -> BackupManifest.File {
            summary.files += 1
            if put.written {
                summary.written += 1
                summary.bytesWritten += put.file.size
            }
            return put.file
        }
        var assets: [BackupManifest.Asset] = []
        for asset in try await store.publishedAssets() {
            // A growing version is a transcode still running: its job is in the queue, and runs again.
            guard let version = try await store.versions(of: asset).current, !version.isGrowing else { continue }
            var files: [BackupManifest.File] = []
            for relative in try await store.files(of: version) {
                guard let bytes = try await store.bytes(of: relative, in: version, maximumBytes: Int(Int32.max)) else {
                    throw BackupError("\(asset)/\(version.version)/\(relative): listed but not readable")
                }
                files.append(count(try await folder.put(bytes, as: relative)))
            }
            assets.append(BackupManifest.Asset(asset: asset.rawValue, version: version.version, files: files))
        }
        summary.assets = assets.count
        var uploads: [BackupManifest.File] = []
        // A folder store's sealed uploads are files here; a bucket's stay in the bucket.
        if store is AssetStore, let names = try? FileManager.default.contentsOfDirectory(atPath: store.uploads) {
            for name in names.sorted() where StorePath.isSafeRelative(name) && !name.hasPrefix(".") {
                var info = stat()
                guard lstat(store.uploads + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
                uploads.append(count(try await folder.putFile(at: store.uploads + "/" + name, as: name)))
            }
        }
        var snapshot: BackupManifest.File?
        if let redis {
            let (lines, keyCount) = try await RedisSnapshot.take(redis: redis, keys: keys)
            snapshot = count(try await folder.put(lines, as: "redis.jsonl"))
            summary.redisKeys = keyCount
        }
        let manifest = BackupManifest(
            format: BackupManifest.currentFormat, name: summary.name, created: ISO8601DateFormatter().string(from: now),
            previous: await folder.latest(), masterKeyID: keyring.current.id, redisPrefix: keys.prefix, assets: assets, uploads: uploads,
            redis: snapshot
        )
        try await folder.write(manifest, signedWith: keyring.current)
        return summary
    }

    static func name(at date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return "b" + formatter.string(from: date) + "-" + String(UInt32.random(in: 0 ... .max), radix: 16)
    }
}

extension AssetStorage {
    /// A whole file of a version as bytes; nil when there is no such file.
    func bytes(of relative: String, in version: PublishedVersion, maximumBytes: Int) async throws -> [UInt8]? {
        try await read(relative, of: version, range: nil, maximumBytes: maximumBytes) { size, fill in
            var bytes = [UInt8](repeating: 0, count: size)
            let filled = try bytes.withUnsafeMutableBytes { try fill($0) }
            return Array(bytes.prefix(filled))
        }?.bytes
    }
}
