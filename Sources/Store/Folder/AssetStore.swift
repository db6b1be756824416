import Foundation
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// One published version of an asset: immutable once published.
public struct PublishedVersion: Sendable, Equatable {
    public let asset: AssetID
    /// `v<UTC yyyyMMddTHHmmss>Z-<12 hex>`: sorts by publish time, unique.
    public let version: String
    /// Where the version's files are: the absolute folder holding `master.m3u8` and the rest in a
    /// folder store, the key prefix of its objects in a bucket.
    public let directory: String
    /// Shown while its transcode still runs: its playlists grow (an EVENT playlist, no ENDLIST)
    /// until the version is whole. Everything else in it is immutable from the moment it exists.
    public var isGrowing: Bool

    public init(asset: AssetID, version: String, directory: String, isGrowing: Bool = false) {
        self.asset = asset
        self.version = version
        self.directory = directory
        self.isGrowing = isGrowing
    }

    /// The path (or key) of a file inside the version, or nil when `relative` is not a plain
    /// relative path the store could have written (see ``StorePath``).
    public func path(of relative: String) -> String? {
        guard StorePath.isSafeRelative(relative) else { return nil }
        return directory + "/" + relative
    }
}

/// Where assets live on a filesystem.
///
/// ```
/// ROOT/staging/<asset>.<random>/        being written; never served; removed on failure
/// ROOT/objects/<asset>/<version>/       a published version, immutable
/// ROOT/assets/<asset> -> ../objects/<asset>/<version>   swapped atomically on publish
/// ```
///
/// A version becomes visible in one `rename(2)` of a symbolic link, after its files were flushed
/// to disk: a reader sees the old version or the new one, complete, never a mix and never half.
public final class AssetStore: Sendable {
    /// The store folder, absolute, without a trailing slash.
    public let root: String
    /// Where ``AssetStorage``'s calls wait on the disk.
    let threadPool: NIOThreadPool

    var stagingRoot: String { root + "/staging" }
    var objectsRoot: String { root + "/objects" }
    var assetsRoot: String { root + "/assets" }

    /// Opens a store, creating its folders when they are missing; for writers.
    ///
    /// Throws when the folders cannot be created or written, naming the path and the reason.
    public init(root: String, threadPool: NIOThreadPool = .singleton) throws(StoreError) {
        self.root = StorePath.absolute(root)
        self.threadPool = threadPool
        for folder in [self.root, stagingRoot, objectsRoot, assetsRoot] {
            try StorePath.makeDirectory(folder)
        }
        guard access(stagingRoot, W_OK) == 0 else {
            throw StoreError.system("the store is not writable", path: stagingRoot)
        }
    }

    /// A store whose folders are made as they are needed, not checked now: a worker starts
    /// while its store is down, and postpones its jobs until it is back.
    public init(lazilyAt root: String, threadPool: NIOThreadPool = .singleton) {
        self.root = StorePath.absolute(root)
        self.threadPool = threadPool
    }

    /// Opens an existing store for reading; nothing is created. Missing subfolders simply hold no
    /// assets yet.
    public init(readingFrom root: String, threadPool: NIOThreadPool = .singleton) throws(StoreError) {
        self.root = StorePath.absolute(root)
        self.threadPool = threadPool
        var info = stat()
        guard stat(self.root, &info) == 0 else {
            throw StoreError.system("cannot open the store", path: self.root)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw StoreError("\(self.root): the store must be a folder")
        }
    }

    // MARK: - Reading

    /// The version of `asset` readers see now, or nil when it was never published (or was deleted).
    public func publishedVersion(of asset: AssetID) throws(StoreError) -> PublishedVersion? {
        let link = assetsRoot + "/" + asset.rawValue
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink(link, &buffer, buffer.count - 1)
        if length < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw StoreError.system("cannot read the published version", path: link)
        }
        let target = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let expectedPrefix = "../objects/\(asset.rawValue)/"
        let version = target.hasPrefix(expectedPrefix) ? String(target.dropFirst(expectedPrefix.count)) : ""
        guard Self.isVersionName(version) else {
            throw StoreError("\(link): points to '\(target)', not to a version of \(asset.rawValue)")
        }
        let directory = "\(objectsRoot)/\(asset.rawValue)/\(version)"
        let isGrowing = access(directory + "/" + Self.growingMarker, F_OK) == 0
        return PublishedVersion(asset: asset, version: version, directory: directory, isGrowing: isGrowing)
    }

    /// The hidden file in a version naming who published it (``StagingArea/publish(requiredFiles:publisher:)``);
    /// never served: the store's names never start with a dot.
    static let publisherFile = ".publisher"

    /// Who published `version` (a job's id), when it was recorded.
    public func publisher(of version: PublishedVersion) -> String? {
        guard let data = FileManager.default.contents(atPath: version.directory + "/" + Self.publisherFile) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// A version of `asset` that is still on disk (the published one, or the one before, kept so
    /// readers that started on it can finish), or nil.
    public func version(_ name: String, of asset: AssetID) -> PublishedVersion? {
        guard Self.isVersionName(name) else { return nil }
        let directory = "\(objectsRoot)/\(asset.rawValue)/\(name)"
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return nil }
        return PublishedVersion(asset: asset, version: name, directory: directory)
    }

    /// The versions of `asset` still on disk, oldest first.
    public func versionsOnDisk(of asset: AssetID) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "\(objectsRoot)/\(asset.rawValue)") else { return [] }
        return names.filter(Self.isVersionName).sorted()
    }

    /// Every asset with a published version, sorted.
    public func publishedAssets() throws(StoreError) -> [AssetID] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: assetsRoot) else { return [] }
        return names.sorted().compactMap { try? AssetID($0) }
    }

    /// Withdraws an asset: readers stop seeing it at once; its versions are removed after.
    public func unpublish(_ asset: AssetID) throws(StoreError) {
        let link = assetsRoot + "/" + asset.rawValue
        if unlink(link) != 0, errno != ENOENT {
            throw StoreError.system("cannot withdraw the asset", path: link)
        }
        try StorePath.syncDirectory(assetsRoot)
        try? FileManager.default.removeItem(atPath: "\(objectsRoot)/\(asset.rawValue)")
    }

    // MARK: - Versions

    static func newVersionName() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var generator = SystemRandomNumberGenerator()
        let suffix = (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        return String(
            format: "v%04d%02d%02dT%02d%02d%02dZ-%@",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), suffix
        )
    }

    public static func isVersionName(_ name: String) -> Bool {
        // v20261123T171900Z-0123456789ab
        let bytes = Array(name.utf8)
        guard bytes.count == 30, bytes[0] == UInt8(ascii: "v"), bytes[9] == UInt8(ascii: "T"),
              bytes[16] == UInt8(ascii: "Z"), bytes[17] == UInt8(ascii: "-")
        else { return false }
        let digits = bytes[1..<9] + bytes[10..<16]
        let hex = bytes[18...]
        return digits.allSatisfy { (48...57).contains($0) }
            && hex.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
