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
///
/// Files are written relative to a descriptor of the folder, not its path: a version shown while
/// it grows (``show(publisher:)``) moves into the store's objects while its writer goes on.
public final class StagingArea {
    public let asset: AssetID
    /// The absolute staging folder (where it was made: a shown version has moved on).
    public let directory: String
    /// False for an adopted folder, which only its creator removes.
    public let ownsDirectory: Bool
    let store: AssetStore
    /// The folder, open: what every write is relative to.
    let folderDescriptor: Int32
    private var createdDirectories: Set<String> = []
    /// Relative names of the files this area wrote, to flush before they are published.
    private(set) var writtenFiles: [String] = []
    var state = State.staging
    /// Told the relative name of each file once it is whole (a worker's child reports them, so
    /// its worker can store them before the transcode ends).
    public var onWrite: ((String) -> Void)?
    /// Writes replace a file of the same name (whole, in one rename) instead of refusing it: a
    /// part of a split transcode writes into a folder it shares, where an earlier attempt of the
    /// same part may have left the same segments.
    public var replacesExisting = false

    enum State {
        case staging
        /// Shown while it grows: the folder is the published version at `destination`.
        case growing(PublishedVersion)
        case published, discarded
    }

    init(store: AssetStore, asset: AssetID, directory: String, ownsDirectory: Bool) throws(StoreError) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError.system("cannot open the staging folder", path: directory) }
        self.store = store
        self.asset = asset
        self.directory = directory
        self.ownsDirectory = ownsDirectory
        folderDescriptor = descriptor
    }

    deinit {
        if case .staging = state { discard() }
        if case .growing = state { discard() }
        close(folderDescriptor)
    }

    /// Writes a new file at `relative` (folders created as needed). Each file is written once:
    /// writing the same name twice is an error, so a pipeline bug cannot silently replace a segment.
    public func write(_ bytes: [UInt8], to relative: String) throws(StoreError) {
        if replacesExisting { return try replace(bytes, at: relative) }
        try checkWritable(relative)
        // Whole or absent: a version shown while it grows is read as it is written, and what a
        // reader finds there is cached as immutable. Written aside, then linked into place
        // (which fails if the name exists: each file is written once).
        let partial = Self.partialName(of: relative)
        try writeFile(bytes, at: partial, exclusive: false)
        writtenFiles.removeLast()
        defer { unlinkat(folderDescriptor, partial, 0) }
        guard linkat(folderDescriptor, partial, folderDescriptor, relative, 0) == 0 else {
            throw StoreError.system("cannot create file", path: directory + "/" + relative)
        }
        writtenFiles.append(relative)
        onWrite?(relative)
    }

    /// The hidden name a file is written under before it takes its own (never served: the store's
    /// names never start with a dot).
    static func partialName(of relative: String) -> String {
        let slash = relative.lastIndex(of: "/")
        let name = slash.map { relative[relative.index(after: $0)...] } ?? relative[...]
        return (slash.map { String(relative[...$0]) } ?? "") + ".\(name).partial"
    }

    /// Writes `text` as UTF-8.
    public func write(_ text: String, to relative: String) throws(StoreError) {
        try write(Array(text.utf8), to: relative)
    }

    /// Writes `relative` anew, replacing what was there in one rename: for the playlists of a
    /// version that grows, which readers may be reading at that moment.
    public func replace(_ text: String, at relative: String) throws(StoreError) {
        try replace(Array(text.utf8), at: relative)
    }

    /// ``replace(_:at:)`` for bytes.
    public func replace(_ bytes: [UInt8], at relative: String) throws(StoreError) {
        try checkWritable(relative)
        let partial = Self.partialName(of: relative)
        try writeFile(bytes, at: partial, exclusive: false)
        guard renameat(folderDescriptor, partial, folderDescriptor, relative) == 0 else {
            throw StoreError.system("cannot replace", path: directory + "/" + relative)
        }
        writtenFiles.removeLast()
        if !writtenFiles.contains(relative) { writtenFiles.append(relative) }
        onWrite?(relative)
    }

    private func checkWritable(_ relative: String) throws(StoreError) {
        switch state {
        case .staging, .growing: break
        case .published, .discarded: throw StoreError("\(directory): staging area already \(publishedOrDiscarded)")
        }
        guard StorePath.isSafeRelative(relative) else {
            throw StoreError("\(directory): refusing to write '\(relative)': not a plain relative path")
        }
    }

    /// Writes a file, `relative` already checked (or one of the store's own hidden names).
    func writeFile(_ bytes: [UInt8], at relative: String, exclusive: Bool) throws(StoreError) {
        let path = directory + "/" + relative
        if let slash = relative.lastIndex(of: "/") {
            let parent = String(relative[..<slash])
            if !createdDirectories.contains(parent) {
                try makeSubfolders(parent)
                createdDirectories.insert(parent)
            }
        }
        let descriptor = openat(folderDescriptor, relative, O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), 0o644)
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
        writtenFiles.append(relative)
    }

    /// Creates the folders of `relative` inside the staging folder, never the staging folder itself:
    /// a writer that outlived its attempt cannot bring back a folder its owner removed.
    private func makeSubfolders(_ relative: String) throws(StoreError) {
        var partial = ""
        for component in relative.split(separator: "/") {
            partial += (partial.isEmpty ? "" : "/") + component
            if mkdirat(folderDescriptor, partial, 0o755) == 0 { continue }
            var info = stat()
            guard errno == EEXIST, fstatat(folderDescriptor, partial, &info, 0) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw StoreError.system("cannot create folder", path: directory + "/" + partial)
            }
        }
    }

    /// True when the staging area holds a file at `relative`.
    public func contains(_ relative: String) -> Bool {
        StorePath.isSafeRelative(relative) && faccessat(folderDescriptor, relative, F_OK, 0) == 0
    }

    /// Flushes every file this area wrote, and its folders, to disk.
    func syncWritten() throws(StoreError) {
        for file in writtenFiles {
            let descriptor = openat(folderDescriptor, file, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw StoreError.system("cannot open file", path: directory + "/" + file) }
            defer { close(descriptor) }
            guard fdatasync(descriptor) == 0 else { throw StoreError.system("cannot flush to disk", path: directory + "/" + file) }
        }
        for folder in createdDirectories {
            let descriptor = openat(folderDescriptor, folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard descriptor >= 0 else { throw StoreError.system("cannot open folder", path: directory + "/" + folder) }
            defer { close(descriptor) }
            guard fsync(descriptor) == 0 else { throw StoreError.system("cannot flush folder", path: directory + "/" + folder) }
        }
        guard fsync(folderDescriptor) == 0 else { throw StoreError.system("cannot flush folder", path: directory) }
    }

    /// Ends the staging area unpublished: its owner removes the folder and everything in it; an
    /// adopted area only stops writing (its creator removes the folder). A version shown while it
    /// grew is withdrawn first. Safe to call more than once.
    /// Lets go of the folder without removing it: another holder takes it over (a split
    /// transcode's next attempt).
    func leave() {
        switch state {
        case .staging, .growing: state = .discarded
        case .published, .discarded: break
        }
    }

    public func discard() {
        switch state {
        case .published, .discarded: return
        case .growing(let shown):
            state = .discarded
            store.withdrawGrowing(shown)
        case .staging:
            state = .discarded
            if ownsDirectory { AssetStore.removeStagingFolder(directory) }
        }
    }

    var publishedOrDiscarded: String {
        if case .published = state { return "published" }
        return access(directory, F_OK) == 0 ? "closed" : "published or discarded"
    }
}
