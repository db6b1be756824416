import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A private folder an asset version is written into before it is published.
///
/// Used by one writer on one thread. The folder has one owner, whoever created it
/// (``AssetStore/stage(_:)``): if the owner's area is neither published nor discarded by the time
/// it is released, it discards itself, so a failed or abandoned transcode leaves nothing behind.
/// An area opened on a folder another process created (``AssetStore/adoptStaging(_:for:)``)
/// writes and publishes but never removes the folder: its creator does.
public final class StagingArea {
    public let asset: AssetID
    /// The absolute staging folder.
    public let directory: String
    /// False for an adopted folder, which only its creator removes.
    public let ownsDirectory: Bool
    private let store: AssetStore
    private var createdDirectories: Set<String> = []
    private var finished = false
    private var writtenFiles: [String] = []
    /// Told the relative name of each file once it is whole (a worker's child reports them, so
    /// its worker can store them before the transcode ends).
    public var onWrite: ((String) -> Void)?

    init(store: AssetStore, asset: AssetID, directory: String, ownsDirectory: Bool) {
        self.store = store
        self.asset = asset
        self.directory = directory
        self.ownsDirectory = ownsDirectory
    }

    deinit {
        if !finished { discard() }
    }

    /// Writes a new file at `relative` (folders created as needed). Each file is written once:
    /// writing the same name twice is an error, so a pipeline bug cannot silently replace a segment.
    public func write(_ bytes: [UInt8], to relative: String) throws(StoreError) {
        guard !finished else { throw StoreError("\(directory): staging area already \(publishedOrDiscarded)") }
        guard StorePath.isSafeRelative(relative) else {
            throw StoreError("\(directory): refusing to write '\(relative)': not a plain relative path")
        }
        try writeFile(bytes, at: relative)
        onWrite?(relative)
    }

    /// Writes a new file, `relative` already checked (or one of the store's own hidden names).
    private func writeFile(_ bytes: [UInt8], at relative: String) throws(StoreError) {
        let path = directory + "/" + relative
        if let slash = relative.lastIndex(of: "/") {
            let parent = directory + "/" + relative[..<slash]
            if !createdDirectories.contains(parent) {
                try makeSubfolders(relative[..<slash])
                createdDirectories.insert(parent)
            }
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StoreError.system("cannot create file", path: path) }
        defer { close(descriptor) }
        let failure: Int32? = bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        if let failure { throw StoreError.system("cannot write", path: path, errno: failure) }
        writtenFiles.append(path)
    }

    /// Creates the folders of `relative` inside the staging folder, never the staging folder itself:
    /// a writer that outlived its attempt cannot bring back a folder its owner removed.
    private func makeSubfolders(_ relative: Substring) throws(StoreError) {
        var path = directory
        for component in relative.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o755) == 0 { continue }
            var info = stat()
            guard errno == EEXIST, stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw StoreError.system("cannot create folder", path: path)
            }
        }
    }

    /// Writes `text` as UTF-8.
    public func write(_ text: String, to relative: String) throws(StoreError) {
        try write(Array(text.utf8), to: relative)
    }

    /// True when the staging area holds a file at `relative`.
    public func contains(_ relative: String) -> Bool {
        StorePath.isSafeRelative(relative) && access(directory + "/" + relative, F_OK) == 0
    }

    /// Makes the staged files the asset's published version, atomically.
    ///
    /// The files are flushed to disk, the folder is renamed into `objects/<asset>/<version>`, and the
    /// `assets/<asset>` link is swapped to it with one `rename(2)`. Versions older than the one this
    /// replaces are then removed; the one it replaces is kept, so a reader that resolved the link a
    /// moment ago can finish.
    ///
    /// Publishes of one asset take turns (a lock on its `objects/<asset>` folder, across
    /// processes): each sees the version the one before it made current, and never prunes a version
    /// another is about to link.
    ///
    /// - Parameters:
    ///   - requiredFiles: files that must exist, or nothing is published.
    ///   - publisher: who publishes (a job's id), recorded in the version. When the asset's current
    ///     version was published by the same publisher — an earlier attempt of the same job, whose
    ///     worker died before it could record the result — nothing new is published: the staged
    ///     files are discarded and that version is returned. A job run twice publishes one version.
    public func publish(requiredFiles: [String], publisher: String? = nil) throws(StoreError) -> PublishedVersion {
        guard !finished else { throw StoreError("\(directory): staging area already \(publishedOrDiscarded)") }
        for file in requiredFiles where !contains(file) {
            throw StoreError("\(directory): cannot publish \(asset): \(file) is missing")
        }
        let assetObjects = store.objectsRoot + "/" + asset.rawValue
        try StorePath.makeDirectory(assetObjects)
        let lock = try StorePath.lockFolder(assetObjects)
        defer { close(lock) }
        if let publisher, let current = try store.publishedVersion(of: asset), store.publisher(of: current) == publisher {
            discard()
            return current
        }
        if let publisher { try writeFile(Array(publisher.utf8), at: AssetStore.publisherFile) }
        for file in writtenFiles { try StorePath.syncFile(file) }
        for folder in createdDirectories.union([directory]) { try StorePath.syncDirectory(folder) }

        let version = AssetStore.newVersionName()
        let destination = assetObjects + "/" + version
        guard rename(directory, destination) == 0 else {
            throw StoreError.system("cannot move the staged version to \(destination)", path: directory)
        }
        finished = true
        var published = false
        defer {
            // The version folder is not reachable unless the link below was swapped to it.
            if !published { try? FileManager.default.removeItem(atPath: destination) }
        }
        try StorePath.syncDirectory(assetObjects)

        let previous = try store.publishedVersion(of: asset)
        try StorePath.makeDirectory(store.assetsRoot)
        let link = store.assetsRoot + "/" + asset.rawValue
        let temporaryLink = store.assetsRoot + "/.\(asset.rawValue).\(version).link"
        guard symlink("../objects/\(asset.rawValue)/\(version)", temporaryLink) == 0 else {
            throw StoreError.system("cannot create the publish link", path: temporaryLink)
        }
        guard rename(temporaryLink, link) == 0 else {
            let error = StoreError.system("cannot swap the publish link", path: link)
            unlink(temporaryLink)
            throw error
        }
        published = true
        try StorePath.syncDirectory(store.assetsRoot)
        pruneVersions(in: assetObjects, keeping: [version] + (previous.map { [$0.version] } ?? []))
        return PublishedVersion(asset: asset, version: version, directory: destination)
    }

    /// Ends the staging area unpublished: its owner removes the folder and everything in it; an
    /// adopted area only stops writing (its creator removes the folder). Safe to call more than once.
    public func discard() {
        guard !finished else { return }
        finished = true
        if ownsDirectory { AssetStore.removeStagingFolder(directory) }
    }

    private var publishedOrDiscarded: String {
        access(directory, F_OK) == 0 ? "closed" : "published or discarded"
    }

    /// Removes every version but the ones `kept` (the new one and the one it replaced). Not by
    /// name order: two publishes within one second get names whose random suffixes may sort either
    /// way. Best effort: a version left behind is only wasted space.
    private func pruneVersions(in folder: String, keeping kept: [String]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where AssetStore.isVersionName(name) && !kept.contains(name) {
            try? FileManager.default.removeItem(atPath: folder + "/" + name)
        }
    }
}
