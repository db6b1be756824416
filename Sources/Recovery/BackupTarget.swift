import Vault

/// Where backups are kept: a folder (``BackupFolder``) or a bucket (``BackupBucket``), laid out
/// alike (`objects/<2 hex>/<sha256>`, `backups/<name>/manifest.json` and `.sig`, `latest`).
public protocol BackupTarget: Sendable {
    /// The folder or `s3://bucket/prefix`, for messages.
    var location: String { get }
    /// Whether the object of `file` is there, whole (by its size; its bytes are checked on restore).
    func has(_ file: BackupManifest.File) async -> Bool
    /// Keeps `bytes` as an object unless it is there; its entry for `path`, and whether it was written.
    func put(_ bytes: [UInt8], as path: String) async throws -> (file: BackupManifest.File, written: Bool)
    /// The same for a local file, read piece by piece (uploads run to gigabytes).
    func putFile(at source: String, as path: String) async throws -> (file: BackupManifest.File, written: Bool)
    /// The object's bytes, checked against the manifest: missing, truncated or altered is refused by name.
    func get(_ file: BackupManifest.File) async throws(BackupError) -> [UInt8]
    /// Checks an object without keeping it in memory.
    func verify(_ file: BackupManifest.File) async throws(BackupError)
    /// Copies an object (already verified) to a local file.
    func copy(_ file: BackupManifest.File, to path: String) async throws
    /// The newest backup's name.
    func latest() async -> String?
    /// Writes the manifest and its signature, then points `latest` at it.
    func write(_ manifest: BackupManifest, signedWith key: MasterKey) async throws
    /// Backup `name`'s manifest, its signature checked.
    func manifest(_ name: String, keyring: Keyring) async throws(BackupError) -> BackupManifest
}
