import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import S3

/// A worker's version on its way to a bucket: the transcode writes into a local staging folder
/// (the worker's spool); each finished file is uploaded as soon as the worker hears of it
/// (``stored(_:)``) and its local copy removed, so segments reach the bucket while the ladder is
/// still being encoded and the spool holds little more than what is in flight. ``show(requiredFiles:publisher:)``
/// points the asset at the version while it grows; ``publish(requiredFiles:publisher:)`` uploads
/// what is left, then swaps the asset's pointer (to the version, whole).
final class BucketStaging: VersionStaging, Sendable {
    private let store: BucketStore
    private let area: LockedArea
    let version: String
    private let role: Role
    private let state = NIOLockedValueBox(State())

    /// A version of its own; one whose parts other workers write (``SplitStorage``); or a part.
    enum Role { case whole, shared, part }

    private struct State {
        var uploaded: Set<String> = []
        var finished = false
        /// The pointer names this version, growing.
        var shown = false
    }

    init(store: BucketStore, area: StagingArea, version: String, role: Role = .whole) {
        self.store = store
        self.area = LockedArea(area)
        self.version = version
        self.role = role
    }

    var asset: AssetID { area.asset }
    var folder: String { area.directory }

    func stored(_ relative: String) async throws(StoreError) {
        guard StorePath.isSafeRelative(relative) else {
            throw StoreError("\(folder): refusing to store '\(relative.prefix(80))': not a plain relative path")
        }
        // A playlist is written again as its version grows: stored each time, kept in the spool
        // (the writer replaces it there; removing it could remove a newer copy).
        let replaceable = Self.isReplaceable(relative)
        let already = state.withLockedValue { $0.finished || (!replaceable && $0.uploaded.contains(relative)) }
        guard !already else { return }
        // Once shown, a playlist naming a file not stored yet would send players to a 404: it
        // waits for its next report. Before, nothing of the version is visible.
        // A shared version's playlists name parts other workers stored: its assembler lists only
        // those whose jobs have ended.
        try await upload(relative, onlyWhenComplete: replaceable && role == .whole && state.withLockedValue { $0.shown })
        // The bucket has it now: the spool need not keep it.
        if !replaceable { unlink(folder + "/" + relative) }
    }

    func show(requiredFiles: [String], publisher: String) async throws(StoreError) -> PublishedVersion? {
        guard role != .part else { return nil }
        guard !state.withLockedValue({ $0.finished || $0.shown }) else { throw StoreError("\(folder): only a staged version can be shown") }
        let uploaded = state.withLockedValue { $0.uploaded }
        for file in requiredFiles where !uploaded.contains(file) {
            throw StoreError("\(folder): cannot show \(asset): \(file) is not stored yet")
        }
        switch try await store.swapPointer(asset, to: version, publisher: publisher, growing: true) {
        case .swapped(let shown):
            // Discarded while the pointer was being swapped (the attempt was cancelled): withdrawn
            // at once, or the asset would point at objects being deleted.
            let discarded = state.withLockedValue { state -> Bool in
                if state.finished { return true }
                state.shown = true
                return false
            }
            if discarded {
                await store.withdrawGrowing(asset, version: version)
                return nil
            }
            return shown
        case .alreadyPublished, .notShown:
            return nil
        }
    }

    func publish(requiredFiles: [String], publisher: String?) async throws(StoreError) -> PublishedVersion {
        guard role != .part else { throw StoreError("\(folder): a part of a split transcode is published by the job that split it") }
        guard !state.withLockedValue({ $0.finished }) else { throw StoreError("\(folder): staging already published or discarded") }
        let remaining = try localFiles().filter { relative in Self.isReplaceable(relative) || !state.withLockedValue { $0.uploaded.contains(relative) } }
        try await uploadAll(remaining)
        let uploaded = state.withLockedValue { $0.uploaded }
        for file in requiredFiles where !uploaded.contains(file) {
            throw StoreError("\(folder): cannot publish \(asset): \(file) is missing")
        }
        let published: PublishedVersion
        switch try await store.swapPointer(asset, to: version, publisher: publisher) {
        case .swapped(let swapped): published = swapped
        case .alreadyPublished(let earlier):
            // An earlier attempt of the same job published: this attempt's objects are nobody's.
            await discard()
            return earlier
        case .notShown: throw StoreError("\(folder): cannot publish \(asset): the pointer refused a whole version")
        }
        state.withLockedValue { $0.finished = true }
        area.discard()
        let readable = (try? await store.versions(of: asset).readable.keys).map(Set.init) ?? []
        await store.pruneVersions(of: asset, keeping: readable.union([version]))
        return published
    }

    /// A shared version's attempt ends, the version kept for the next (``SharedStaging/leave()``).
    func leave() async {
        state.withLockedValue { $0.finished = true }
        area.discard()
    }

    func discard() async {
        let uploaded: Set<String>? = state.withLockedValue { state in
            guard !state.finished else { return nil }
            state.finished = true
            return state.uploaded
        }
        area.discard()
        switch role {
        case .part: return  // its objects are the shared version's now
        case .shared:
            // Every part's objects, not only what this attempt uploaded; shown, withdrawn first.
            if uploaded != nil { await store.withdrawGrowing(asset, version: version) }
            try? await store.deleteAll(under: store.versionPrefix(asset, version) + "/")
            return
        case .whole: break
        }
        // Also when `show` did not say it succeeded (a pointer swap that landed, then timed out):
        // only a growing pointer naming this version is withdrawn.
        if uploaded != nil { await store.withdrawGrowing(asset, version: version) }
        guard let uploaded, !uploaded.isEmpty else { return }
        try? await store.deleteObjects(uploaded.map { store.versionPrefix(asset, version) + "/" + $0 })
    }

    /// Uploads one local file to its key in the version. With `onlyWhenComplete` (a playlist the
    /// writer may have written again since it was reported), nothing is sent while it names a
    /// file not stored yet: its later report, after that file's, sends it.
    private func upload(_ relative: String, onlyWhenComplete: Bool = false) async throws(StoreError) {
        let path = folder + "/" + relative
        // Read on the thread pool: a segment is megabytes, and this runs on the cooperative pool.
        guard let data = try? await NIOThreadPool.singleton.runIfActive({ FileManager.default.contents(atPath: path) }) ?? nil else {
            throw StoreError("\(path): cannot read the staged file")
        }
        if onlyWhenComplete {
            let stored = state.withLockedValue { $0.uploaded }
            guard StagedPlaylist.files(namedBy: String(decoding: data, as: UTF8.self), at: relative).allSatisfy(stored.contains) else { return }
        }
        let key = store.versionPrefix(asset, version) + "/" + relative
        do {
            try await store.client.putObject(bucket: store.bucket, key: key, body: ByteBuffer(bytes: data), contentType: Self.contentType(of: relative))
        } catch {
            throw StoreError("\(store.location): cannot store \(relative) of \(asset): \(error)")
        }
        state.withLockedValue { _ = $0.uploaded.insert(relative) }
    }

    private func uploadAll(_ files: [String]) async throws(StoreError) {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, relative) in files.enumerated() {
                    if index >= 4 { try await group.next() }
                    group.addTask { try await self.upload(relative) }
                }
                try await group.waitForAll()
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("\(store.location): \(error)")
        }
    }

    /// Every file of the local folder, relative to it; hidden ones (the store's own) left out.
    private func localFiles() throws(StoreError) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else {
            throw StoreError("\(folder): cannot list the staging folder")
        }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            let name = relative.split(separator: "/").last.map(String.init) ?? relative
            var isFolder: ObjCBool = false
            guard !name.hasPrefix("."), FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isFolder), !isFolder.boolValue else { continue }
            files.append(relative)
        }
        return files.sorted()
    }

    /// Playlists: written again while a version grows.
    static func isReplaceable(_ relative: String) -> Bool { relative.hasSuffix(".m3u8") }

    /// What a CDN or a browser reading the bucket directly is told.
    static func contentType(of relative: String) -> String {
        if relative.hasSuffix(".m3u8") { return "application/vnd.apple.mpegurl" }
        if relative.hasSuffix(".ts") { return "video/mp2t" }
        if relative.hasSuffix(".m4s") || relative.hasSuffix(".mp4") { return "video/mp4" }
        if relative.hasSuffix(".json") { return "application/json" }
        return "application/octet-stream"
    }
}

/// A ``StagingArea`` (used from one thread at a time) behind a lock, for a `Sendable` owner.
private final class LockedArea: @unchecked Sendable {
    private let lock = NSLock()
    private let area: StagingArea

    init(_ area: StagingArea) { self.area = area }

    var asset: AssetID { area.asset }
    var directory: String { area.directory }
    func discard() { lock.withLock { area.discard() } }
}

/// A playlist the transcode child wrote into the spool, read by the worker: the child is treated
/// as hostile, so this reads any bytes (fuzzed as `child-output`).
package enum StagedPlaylist {
    /// The files of the version a playlist at `relative` names: its URI lines and `URI="…"`
    /// attributes, resolved against its folder (a key URI `keys/<id>` is the file `keys/<id>.key`).
    package static func files(namedBy playlist: String, at relative: String) -> [String] {
        let folder = relative.split(separator: "/").dropLast().map(String.init)
        var uris: [Substring] = []
        for line in playlist.split(separator: "\n") {
            if !line.hasPrefix("#") {
                uris.append(line)
            } else if let start = line.range(of: "URI=\""), let end = line[start.upperBound...].firstIndex(of: "\"") {
                uris.append(line[start.upperBound..<end])
            }
        }
        return uris.compactMap { uri -> String? in
            var parts = folder
            for component in uri.prefix { $0 != "?" }.split(separator: "/") {
                if component == ".." { guard !parts.isEmpty else { return nil }; parts.removeLast() } else if component != "." { parts.append(String(component)) }
            }
            let file = parts.joined(separator: "/")
            return file.hasPrefix("keys/") && !file.hasSuffix(".key") ? file + ".key" : file
        }
    }
}
