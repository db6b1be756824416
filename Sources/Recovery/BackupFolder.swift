import Foundation
import Vault

/// The folder backups live in:
///
/// ```
/// FOLDER/objects/<2 hex>/<sha256>          every file once, by its content: later backups add only
///                                          what changed (versions are immutable)
/// FOLDER/backups/<name>/manifest.json      what one backup holds (``BackupManifest``)
/// FOLDER/backups/<name>/manifest.sig       its signature
/// FOLDER/latest                            the newest backup's name
/// ```
///
/// Every file is written aside and renamed into place, the manifest last and `latest` after it:
/// a backup cut short leaves objects nobody names, never a manifest naming what is missing.
public struct BackupFolder: BackupTarget {
    public let root: String

    public var location: String { root }

    public init(_ root: String) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
    }

    func objectPath(_ sha256: String) -> String { "\(root)/objects/\(sha256.prefix(2))/\(sha256)" }

    /// Whether the object is there, whole (by its size; its bytes are checked on restore).
    public func has(_ file: BackupManifest.File) async -> Bool { hasNow(file) }

    func hasNow(_ file: BackupManifest.File) -> Bool {
        var info = stat()
        return stat(objectPath(file.sha256), &info) == 0 && Int(info.st_size) == file.size
    }

    /// Keeps `bytes` as an object; returns its entry for `path`.
    public func put(_ bytes: [UInt8], as path: String) async throws -> (file: BackupManifest.File, written: Bool) {
        let file = BackupManifest.File(path: path, sha256: Digest.hex(Digest.sha256(bytes)), size: bytes.count)
        if hasNow(file) { return (file, false) }
        try writeAtomically(bytes, to: objectPath(file.sha256))
        return (file, true)
    }

    /// Copies a local file in as an object, hashing it on the way (uploads run to gigabytes).
    public func putFile(at source: String, as path: String) async throws -> (file: BackupManifest.File, written: Bool) {
        guard let input = FileHandle(forReadingAtPath: source) else { throw BackupError("\(source): cannot be read") }
        defer { try? input.close() }
        let temporary = "\(root)/objects/incoming-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: "\(root)/objects", withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let output = FileHandle(forWritingAtPath: temporary) else {
            throw BackupError("\(temporary): cannot be written")
        }
        var hasher = SHA256Stream()
        var size = 0
        do {
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(Array(chunk))
                size += chunk.count
                try output.write(contentsOf: chunk)
            }
            try output.synchronize()
            try output.close()
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw BackupError("\(source): copy failed: \(error)")
        }
        let file = BackupManifest.File(path: path, sha256: hasher.finish(), size: size)
        if hasNow(file) {
            try? FileManager.default.removeItem(atPath: temporary)
            return (file, false)
        }
        try moveIntoPlace(temporary, objectPath(file.sha256))
        return (file, true)
    }

    /// The object's bytes, checked against the manifest: a missing, truncated or altered one is
    /// refused by name.
    public func get(_ file: BackupManifest.File) async throws(BackupError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: objectPath(file.sha256)) else {
            throw BackupError("\(file.path): its object \(file.sha256) is missing from \(root)/objects")
        }
        guard data.count == file.size else {
            throw BackupError("\(file.path): its object holds \(data.count) bytes, the manifest says \(file.size) (truncated?)")
        }
        guard Digest.hex(Digest.sha256(Array(data))) == file.sha256 else {
            throw BackupError("\(file.path): its object's bytes do not hash to \(file.sha256) (altered)")
        }
        return Array(data)
    }

    /// Checks an object without keeping it in memory (a large upload).
    public func verify(_ file: BackupManifest.File) async throws(BackupError) {
        guard let input = FileHandle(forReadingAtPath: objectPath(file.sha256)) else {
            throw BackupError("\(file.path): its object \(file.sha256) is missing from \(root)/objects")
        }
        defer { try? input.close() }
        var hasher = SHA256Stream()
        var size = 0
        while let chunk = try? input.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(Array(chunk))
            size += chunk.count
        }
        guard size == file.size else { throw BackupError("\(file.path): its object holds \(size) bytes, the manifest says \(file.size) (truncated?)") }
        guard hasher.finish() == file.sha256 else { throw BackupError("\(file.path): its object's bytes do not hash to \(file.sha256) (altered)") }
    }

    // MARK: - Manifests

    /// The backups in the folder, oldest first.
    public func copy(_ file: BackupManifest.File, to path: String) async throws {
        try FileManager.default.copyItem(atPath: objectPath(file.sha256), toPath: path)
    }

    public func backups() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/backups")) ?? []).filter { $0.hasPrefix("b") }.sorted()
    }

    /// The newest backup's name, as `latest` says.
    public func latest() async -> String? {
        (try? String(contentsOfFile: "\(root)/latest", encoding: .utf8)).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    public func write(_ manifest: BackupManifest, signedWith key: MasterKey) async throws {
        let bytes = try manifest.encoded()
        let folder = "\(root)/backups/\(manifest.name)"
        try writeAtomically(Array(BackupManifest.signature(of: bytes, key: key).utf8) + [10], to: folder + "/manifest.sig")
        try writeAtomically(bytes, to: folder + "/manifest.json")
        try writeAtomically(Array((manifest.name + "\n").utf8), to: "\(root)/latest")
    }

    /// The manifest of backup `name`, its signature checked.
    public func manifest(_ name: String, keyring: Keyring) async throws(BackupError) -> BackupManifest {
        try BackupManifest.checkName(name)
        let folder = "\(root)/backups/\(name)"
        guard let bytes = FileManager.default.contents(atPath: folder + "/manifest.json") else {
            throw BackupError("\(folder)/manifest.json: no such backup")
        }
        guard let signature = try? String(contentsOfFile: folder + "/manifest.sig", encoding: .utf8) else {
            throw BackupError("\(folder)/manifest.sig: missing: an unsigned manifest is not trusted")
        }
        return try BackupManifest.verified(Array(bytes), signature: signature, keyring: keyring, file: folder + "/manifest.json", name: name)
    }

    private func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let temporary = folder + "/.incoming-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else { throw BackupError("\(temporary): cannot be written") }
        let descriptor = open(temporary, O_RDONLY)
        if descriptor >= 0 { fsync(descriptor); close(descriptor) }
        try moveIntoPlace(temporary, path)
    }

    private func moveIntoPlace(_ temporary: String, _ path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw BackupError("\(path): cannot be written: \(reason)")
        }
    }
}
