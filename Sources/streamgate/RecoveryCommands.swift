import ArgumentParser
import Foundation
import Recovery
import Redis
import S3
import Store
import Vault

/// Where a recovery command's Redis is: given explicitly, never assumed (a backup without
/// `--redis` keeps the store alone, and says so).
struct RecoveryRedisOptions: ParsableArguments {
    @Option(help: "Redis URL of the deployment (redis://, redis+sentinel://, unix://); without it, Redis is left out.")
    var redis: String?

    @Option(help: "The hash tag every key shares.")
    var prefix: String = "sg"

    func client() throws -> RedisClient? {
        guard let redis else { return nil }
        do {
            return RedisClient(url: try RedisURL(redis), connections: 2)
        } catch {
            throw CommandFailure(message: "--redis: \(error)", code: 78)
        }
    }

    var keys: Keyspace { Keyspace(prefix: prefix) }
}

/// A backup folder, or a bucket (`s3://bucket/prefix`) reached with the S3 options given.
func backupTarget(_ text: String, s3: S3Options) throws -> any BackupTarget {
    do {
        switch try StoreLocation(text) {
        case .folder(let path): return BackupFolder(path)
        case .bucket(let name, let prefix): return BackupBucket(client: S3Client(configuration: try s3.s3Configuration()), bucket: name, prefix: prefix)
        }
    } catch {
        throw CommandFailure(message: "\(text): \(error)", code: 78)
    }
}

extension StoreOptions {
    /// The store, for the commands that list and rewrite a version's files (backup, rotation).
    func versionFiles() throws -> any VersionFiles {
        guard let files = try storage(creating: false) as? any VersionFiles else {
            throw CommandFailure(message: "--store: this store cannot list its versions' files", code: 78)
        }
        return files
    }
}

func loadKeyring(_ keyFile: String?) throws -> Keyring {
    do {
        return try Keyring.load(keyFile: keyFile)
    } catch {
        throw CommandFailure(error)
    }
}

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up the published assets, the sealed uploads and the Redis state into a folder; only what changed since the last backup is written."
    )

    @OptionGroup(title: "Store") var store: StoreOptions
    @OptionGroup(title: "Redis") var redis: RecoveryRedisOptions

    @Option(help: ArgumentHelp("Where backups are kept: a folder (made when missing), or s3://bucket/prefix (with the S3 options).", valueName: "folder|s3-url"))
    var to: String

    @Option(help: "A file holding the master key (base64 or 32 raw bytes); else STREAMGATE_MASTER_KEY. It signs the backup.")
    var masterKeyFile: String?

    func run() async throws {
        let keyring = try loadKeyring(masterKeyFile)
        let files = try store.versionFiles()
        let client = try redis.client()
        if client == nil { FileHandle.standardError.write(Data("streamgate: no --redis: the backup keeps the store alone\n".utf8)) }
        do {
            let target = try backupTarget(to, s3: store.s3)
            let summary = try await BackupRun(store: files, redis: client, keys: redis.keys, keyring: keyring, folder: target).run()
            print("backup \(summary.name): \(summary.assets) assets, \(summary.files) files (\(summary.written) new, \(summary.bytesWritten) bytes), \(summary.redisKeys) Redis keys, in \(to)")
        } catch let error as BackupError {
            throw CommandFailure(message: "backup: \(error)", code: 74)
        }
        await client?.shutdown()
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into a store and Redis: every file is checked first, and a damaged backup is refused before anything is written."
    )

    @OptionGroup(title: "Store") var store: StoreOptions
    @OptionGroup(title: "Redis") var redis: RecoveryRedisOptions

    @Option(help: ArgumentHelp("Where the backups are: a folder, or s3://bucket/prefix (with the S3 options).", valueName: "folder|s3-url"))
    var from: String

    @Option(help: "The backup to restore (default: the latest).")
    var backup: String?

    @Option(help: "A local folder for a bucket store's files on their way up.")
    var spool: String?

    @Option(help: "A file holding the master key; else STREAMGATE_MASTER_KEY (with STREAMGATE_PREVIOUS_MASTER_KEYS for a backup signed by an earlier one).")
    var masterKeyFile: String?

    func run() async throws {
        let keyring = try loadKeyring(masterKeyFile)
        let storage = try store.storage(creating: true)
        let client = try redis.client()
        let run = RestoreRun(
            store: storage, redis: client, keys: redis.keys, keyring: keyring, folder: try backupTarget(from, s3: store.s3),
            spool: spool ?? NSTemporaryDirectory() + "streamgate-restore"
        )
        do {
            let summary = try await run.run(backup)
            print("restored \(summary.name): \(summary.assets) assets, \(summary.uploads) uploads, \(summary.redisKeys) Redis keys")
        } catch let error as BackupError {
            throw CommandFailure(message: "restore: \(error)", code: 65)
        }
        await client?.shutdown()
    }
}

struct RotateMasterKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-master-key",
        abstract: "Wrap every content key again under the current master key (STREAMGATE_MASTER_KEY), unwrapping with the earlier ones (STREAMGATE_PREVIOUS_MASTER_KEYS); no segment changes.",
        discussion: """
        Order: give every server and worker the new key as current and the old one in STREAMGATE_PREVIOUS_MASTER_KEYS; \
        run this; once the shared cache's copies of the key files have expired (--l2-ttl), drop the old key.
        """
    )

    @OptionGroup(title: "Store") var store: StoreOptions

    @Option(help: "A file holding the new master key; else STREAMGATE_MASTER_KEY.")
    var masterKeyFile: String?

    func run() async throws {
        let keyring = try loadKeyring(masterKeyFile)
        guard !keyring.previous.isEmpty else {
            throw CommandFailure(message: "no earlier master key: set STREAMGATE_PREVIOUS_MASTER_KEYS to the key(s) being replaced", code: 64)
        }
        let files = try store.versionFiles()
        do {
            let summary = try await KeyRotation(store: files, keyring: keyring).run()
            print("rotated to master key \(keyring.current.id): \(summary.rewrapped) keys wrapped again, \(summary.current) already current, in \(summary.versions) versions of \(summary.assets) assets")
        } catch let error as BackupError {
            throw CommandFailure(message: "rotate-master-key: \(error)", code: 65)
        }
    }
}
