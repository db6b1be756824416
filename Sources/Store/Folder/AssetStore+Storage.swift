import Foundation
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The folder backend of ``AssetStorage``: the filesystem calls of ``AssetStore``, made on a
/// thread pool so no caller's event loop or cooperative thread waits on a disk.
extension AssetStore: AssetStorage {
    public var location: String { root }
    public var uploads: String { root + "/uploads" }

    public func checkReadable() async throws(StoreError) {
        try await onPool { () throws in
            guard access(self.root, R_OK | X_OK) == 0 else { throw StoreError.system("the store is not readable", path: self.root) }
        }
    }

    public func versions(of asset: AssetID) async throws(StoreError) -> AssetVersions {
        try await onPool { () throws -> AssetVersions in
            guard let current = try self.publishedVersion(of: asset) else { return .none }
            var readable: [String: PublishedVersion] = [:]
            for name in self.versionsOnDisk(of: asset) { readable[name] = self.version(name, of: asset) }
            readable[current.version] = current
            return AssetVersions(current: current, publisher: self.publisher(of: current), readable: readable)
        }
    }

    public func read<Bytes>(
        _ relative: String, of version: PublishedVersion, range: ClosedRange<Int>?, maximumBytes: Int,
        into make: @escaping @Sendable (_ size: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Bytes
    ) async throws -> StoredRead<Bytes>? {
        guard let path = version.path(of: relative) else { return nil }
        let box: ResultBox<StoredRead<Bytes>>? = try await threadPool.runIfActive { () throws -> ResultBox<StoredRead<Bytes>>? in
            guard let file = try ReadableFile(path: path) else { return nil }
            defer { file.close() }
            let window = range.map { $0.clamped(to: 0...max(0, file.size - 1)) } ?? 0...(file.size - 1)
            let count = file.size == 0 || (range.map { $0.lowerBound >= file.size } ?? false) ? 0 : window.count
            guard count <= maximumBytes else {
                throw StoreError("\(path): \(count) bytes; at most \(maximumBytes) are read")
            }
            let bytes = try make(count) { target in try file.read(into: target, at: window.lowerBound, count: count, path: path) }
            return ResultBox(StoredRead(bytes: bytes, totalSize: file.size))
        }
        return box?.value
    }

    public func publishedAssets() async throws(StoreError) -> [AssetID] {
        try await onPool { try self.publishedAssets() }
    }

    public func unpublish(_ asset: AssetID) async throws(StoreError) {
        try await onPool { try self.unpublish(asset) }
    }

    public func withdrawGrowth(of asset: AssetID, by publisher: String) async -> Bool {
        (try? await onPool { () throws -> Bool in
            guard let current = try self.publishedVersion(of: asset), current.isGrowing, self.publisher(of: current) == publisher else { return false }
            // Checks again, under the asset's lock, that the link still names that version.
            return self.withdrawGrowing(current)
        }) ?? false
    }

    public func stage(_ asset: AssetID, heldBy holder: String, spool: String) async throws(StoreError) -> any VersionStaging {
        try await onPool { () throws -> FolderStaging in
            // What an earlier attempt of this job left when its worker died: this attempt holds the job now.
            self.discardStaging(of: asset, heldBy: holder)
            return FolderStaging(area: try self.stage(asset, heldBy: holder), threadPool: self.threadPool)
        }
    }

    /// Runs `work` on the store's thread pool.
    func onPool<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws(StoreError) -> Value {
        try await threadPool.storeWork(at: root, work)
    }
}

extension NIOThreadPool {
    /// Runs a store's disk work on this pool, its ``StoreError`` kept as it is and any other
    /// error (the pool shut down) named after `place`.
    func storeWork<Value: Sendable>(at place: String, _ work: @escaping @Sendable () throws -> Value) async throws(StoreError) -> Value {
        do {
            return try await runIfActive { try work() }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("\(place): \(error)")
        }
    }
}

/// Carries a non-`Sendable` result off the thread pool (a value made there and touched by nobody else).
private struct ResultBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A file of a published version opened for one read.
private struct ReadableFile {
    let descriptor: Int32
    let size: Int

    /// nil when there is no such regular file.
    init?(path: String) throws(StoreError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT || errno == ENOTDIR || errno == EISDIR { return nil }
            throw StoreError.system("cannot open", path: path)
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(descriptor)
            return nil
        }
        self.descriptor = descriptor
        size = Int(info.st_size)
    }

    func close() { Glibc.close(descriptor) }

    /// Reads exactly `count` bytes at `offset`; a file cut meanwhile is an error, not a short body.
    func read(into target: UnsafeMutableRawBufferPointer, at offset: Int, count: Int, path: String) throws -> Int {
        var total = 0
        while total < count {
            let read = pread(descriptor, target.baseAddress! + total, count - total, off_t(offset + total))
            if read < 0, errno == EINTR { continue }
            if read < 0 { throw StoreError.system("cannot read", path: path) }
            if read == 0 { throw StoreError("\(path): short read (\(total) of \(count) bytes)") }
            total += read
        }
        return total
    }
}

/// A worker's version in a folder store: the transcode writes straight into a staging folder of
/// the store, so a finished file is already where it belongs, and publishing is one rename (two
/// steps for a version shown while it grows: the folder moves at ``show(requiredFiles:publisher:)``,
/// its marker goes at the end).
final class FolderStaging: VersionStaging, @unchecked Sendable {
    // One task uses a staging at a time (``VersionStaging``); the lock only orders its calls.
    private let lock = NSLock()
    let area: StagingArea
    private let threadPool: NIOThreadPool

    /// A split transcode's (``SplitStorage``): its parts write into it from elsewhere, so once
    /// shown, a link at its old place leads them to where it moved.
    private let shared: Bool

    init(area: StagingArea, threadPool: NIOThreadPool, shared: Bool = false) {
        self.area = area
        self.threadPool = threadPool
        self.shared = shared
    }

    var asset: AssetID { area.asset }
    var folder: String { area.directory }

    func stored(_ relative: String) async throws(StoreError) {}

    func show(requiredFiles: [String], publisher: String) async throws(StoreError) -> PublishedVersion? {
        try await threadPool.storeWork(at: folder) { [self] in
            try lock.withLock {
                guard let shown = try area.show(requiredFiles: requiredFiles, publisher: publisher) else { return nil }
                if shared {
                    do {
                        try area.store.bridge(area.directory, to: shown)
                    } catch {
                        area.discard()  // its parts could not find it: withdrawn, published whole at the end
                        throw error
                    }
                }
                return shown
            }
        }
    }

    func publish(requiredFiles: [String], publisher: String?) async throws(StoreError) -> PublishedVersion {
        try await threadPool.storeWork(at: folder) { [self] in
            try lock.withLock {
                let published = try area.publish(requiredFiles: requiredFiles, publisher: publisher)
                removeBridge()
                return published
            }
        }
    }

    func discard() async {
        try? await threadPool.storeWork(at: folder) { [self] in
            lock.withLock {
                area.discard()
                removeBridge()
            }
        }
    }

    /// The link a shown shared version left at its old place, once nobody is to follow it.
    private func removeBridge() {
        var info = stat()
        if shared, lstat(area.directory, &info) == 0, info.st_mode & S_IFMT == S_IFLNK { unlink(area.directory) }
    }
}
