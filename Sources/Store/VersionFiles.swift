import Foundation
import NIOCore

/// What a backup and a master-key rotation need of a store beyond serving: every file of a
/// version, and the one change a published version allows (a content key wrapped again).
public protocol VersionFiles: AssetStorage {
    /// The relative paths of every file of `version`, sorted.
    func files(of version: PublishedVersion) async throws(StoreError) -> [String]

    /// Replaces the wrapped content key `keys/<id>.key` of `version` with `bytes`, atomically (a
    /// reader sees the old file or the new, whole): only a key wrapped again under another master
    /// key, whose content key, and so every segment, is unchanged.
    func replaceWrappedKey(_ relative: String, of version: PublishedVersion, with bytes: [UInt8]) async throws(StoreError)
}

extension VersionFiles {
    /// Whether `relative` names a wrapped key: `keys/<name>.key`, nothing else may be replaced.
    static func isWrappedKey(_ relative: String) -> Bool {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && parts[0] == "keys" && parts[1].hasSuffix(".key") && StorePath.isSafeRelative(relative)
    }
}

extension AssetStore: VersionFiles {
    public func files(of version: PublishedVersion) async throws(StoreError) -> [String] {
        try await onPool { () throws -> [String] in
            let root = version.directory
            guard let walker = FileManager.default.enumerator(atPath: root) else {
                throw StoreError.system("cannot list the version", path: root)
            }
            var files: [String] = []
            while let relative = walker.nextObject() as? String {
                var info = stat()
                // Regular files only: a growing version's markers are files too, links are not kept.
                guard lstat(root + "/" + relative, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
                if relative == AssetStore.publisherFile || relative == AssetStore.growingMarker { continue }
                files.append(relative)
            }
            return files.sorted()
        }
    }

    public func replaceWrappedKey(_ relative: String, of version: PublishedVersion, with bytes: [UInt8]) async throws(StoreError) {
        guard Self.isWrappedKey(relative), let path = version.path(of: relative) else {
            throw StoreError("\(relative): only a version's keys/<id>.key may be replaced")
        }
        try await onPool { () throws in
            let temporary = path + ".rewrap-\(UInt32.random(in: 0 ... .max))"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
                throw StoreError.system("cannot write", path: temporary)
            }
            let descriptor = open(temporary, O_RDONLY)
            if descriptor >= 0 { fsync(descriptor); close(descriptor) }
            guard rename(temporary, path) == 0 else {
                let error = StoreError.system("cannot replace", path: path)
                unlink(temporary)
                throw error
            }
        }
    }
}

extension BucketStore: VersionFiles {
    public func files(of version: PublishedVersion) async throws(StoreError) -> [String] {
        let prefix = version.directory + "/"
        do {
            var files: [String] = []
            for try await page in client.listAllObjects(bucket: bucket, prefix: prefix) {
                files += page.objects.map { String($0.key.dropFirst(prefix.count)) }
            }
            return files.filter { StorePath.isSafeRelative($0) }.sorted()
        } catch {
            throw StoreError("\(location): cannot list \(prefix): \(error)")
        }
    }

    public func replaceWrappedKey(_ relative: String, of version: PublishedVersion, with bytes: [UInt8]) async throws(StoreError) {
        guard Self.isWrappedKey(relative), let key = version.path(of: relative) else {
            throw StoreError("\(relative): only a version's keys/<id>.key may be replaced")
        }
        do {
            // One PUT replaces an object whole: readers get the old bytes or the new.
            try await client.putObject(bucket: bucket, key: key, body: ByteBuffer(bytes: bytes))
        } catch {
            throw StoreError("\(location): cannot replace \(key): \(error)")
        }
    }
}
