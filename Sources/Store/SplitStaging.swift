import Foundation

#if canImport(Glibc)
import Glibc
#endif

// Staging for a split transcode: one job's version that other jobs (its parts: chunks of video,
// the audio) write into, each from its own worker, before the job that split the source
// assembles the playlists and publishes it. The version's `share` is what a part is handed: the
// staging folder (folder store) or the version's name (bucket store).

/// What a store adds for split transcodes.
public protocol SplitStorage: AssetStorage {
    /// A version `holder` (the job that splits the source) assembles from parts: as
    /// ``AssetStorage/stage(_:heldBy:spool:)``, and its ``SharedStaging/share`` lets parts write
    /// into it. With `resuming` (the share an earlier attempt of the same job made), that staging
    /// is taken over with what the parts wrote so far; nil starts a new one. Discarding it removes
    /// every part's files too.
    func stageShared(_ asset: AssetID, heldBy holder: String, spool: String, resuming share: String?) async throws(StoreError) -> any SharedStaging

    /// A part's staging (`holder`: the part's job): its child writes into ``VersionStaging/folder``,
    /// and each file reported goes into the shared version. It is never shown or published, and
    /// discarding it drops only this worker's local copy: what it stored is the version's (a
    /// later attempt of the part writes the same names over it).
    func stagePart(_ asset: AssetID, of share: String, heldBy holder: String, spool: String) async throws(StoreError) -> any VersionStaging
}

/// A split transcode's version, whose parts other jobs write.
public protocol SharedStaging: VersionStaging {
    /// Where parts write: handed to each part's job.
    var share: String { get }
    /// Ends this attempt's hold without removing anything: the job's next attempt resumes the
    /// version (``SplitStorage/stageShared(_:heldBy:spool:resuming:)``) with what its parts wrote.
    func leave() async
}

extension AssetStore: SplitStorage {
    public func stageShared(_ asset: AssetID, heldBy holder: String, spool: String, resuming share: String?) async throws(StoreError) -> any SharedStaging {
        try await onPool { () throws -> FolderStaging in
            guard let share else {
                self.discardStaging(of: asset, heldBy: holder)
                return FolderStaging(area: try self.stage(asset, heldBy: holder), threadPool: self.threadPool, shared: true)
            }
            let name = (share as NSString).lastPathComponent
            guard share == self.stagingRoot + "/" + name, name.hasPrefix("\(asset.rawValue).\(holder).") else {
                throw StoreError("\(share): not a staging folder of \(asset) held by \(holder) in the store \(self.root)")
            }
            let area = try StagingArea(store: self, asset: asset, directory: share, ownsDirectory: true)
            // Shown growing by an earlier attempt: the share is a link to the version it became.
            if let shown = self.shownVersion(bridgedBy: share, of: asset) { area.state = .growing(shown) }
            return FolderStaging(area: area, threadPool: self.threadPool, shared: true)
        }
    }

    public func stagePart(_ asset: AssetID, of share: String, heldBy holder: String, spool: String) async throws(StoreError) -> any VersionStaging {
        try await onPool { () throws -> FolderPartStaging in
            FolderPartStaging(area: try self.adoptStaging(share, for: asset), share: share)
        }
    }
}

extension FolderStaging: SharedStaging {
    var share: String { folder }
    func leave() async { area.leave() }
}

/// A part's files in a folder store: written by its child straight into the shared staging
/// folder, where they already belong.
final class FolderPartStaging: VersionStaging, @unchecked Sendable {
    private let area: StagingArea
    /// The shared staging folder, or the link left where it was once its version is shown: what
    /// the part's child is handed (it resolves it as this worker did).
    private let share: String

    init(area: StagingArea, share: String) {
        self.area = area
        self.share = share
    }

    var asset: AssetID { area.asset }
    var folder: String { share }
    func stored(_ relative: String) async throws(StoreError) {}
    func show(requiredFiles: [String], publisher: String) async throws(StoreError) -> PublishedVersion? { nil }
    func publish(requiredFiles: [String], publisher: String?) async throws(StoreError) -> PublishedVersion {
        throw StoreError("\(folder): a part of a split transcode is published by the job that split it")
    }
    func discard() async {}
}

extension BucketStore: SplitStorage {
    public func stageShared(_ asset: AssetID, heldBy holder: String, spool: String, resuming share: String?) async throws(StoreError) -> any SharedStaging {
        if let share, !AssetStore.isVersionName(share) { throw StoreError("'\(share.prefix(80))' is not a version name") }
        return BucketStaging(store: self, area: try localArea(asset, heldBy: holder, spool: spool), version: share ?? AssetStore.newVersionName(), role: .shared)
    }

    public func stagePart(_ asset: AssetID, of share: String, heldBy holder: String, spool: String) async throws(StoreError) -> any VersionStaging {
        guard AssetStore.isVersionName(share) else { throw StoreError("'\(share.prefix(80))' is not a version name") }
        return BucketStaging(store: self, area: try localArea(asset, heldBy: holder, spool: spool), version: share, role: .part)
    }
}

extension BucketStaging: SharedStaging {
    var share: String { version }
}
