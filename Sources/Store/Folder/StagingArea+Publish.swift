import Foundation

#if canImport(Glibc)
import Glibc
#endif

// Publishing a staged version in a folder store: whole (one rename of the folder, one of the
// asset's link), or shown first while it grows and made whole at the end.

extension StagingArea {
    /// Makes the staged files the asset's published version, atomically.
    ///
    /// The files are flushed to disk, the folder is renamed into `objects/<asset>/<version>`, and the
    /// `assets/<asset>` link is swapped to it with one `rename(2)`. Versions older than the one this
    /// replaces are then removed; the one it replaces is kept, so a reader that resolved the link a
    /// moment ago can finish. A version shown while it grew (``show(requiredFiles:publisher:)``) is already
    /// there: it stops growing (its marker goes) and nothing moves.
    ///
    /// Publishes of one asset take turns (a lock on its `objects/<asset>` folder, across
    /// processes): each sees the version the one before it made current, and never prunes a version
    /// another is about to link.
    ///
    /// - Parameters:
    ///   - requiredFiles: files that must exist, or nothing is published.
    ///   - publisher: who publishes (a job's id), recorded in the version. When the asset's current
    ///     version is whole and was published by the same publisher — an earlier attempt of the same
    ///     job, whose worker died before it could record the result — nothing new is published: the
    ///     staged files are discarded and that version is returned. A job run twice publishes one
    ///     version.
    public func publish(requiredFiles: [String], publisher: String? = nil) throws(StoreError) -> PublishedVersion {
        for file in requiredFiles where !contains(file) {
            throw StoreError("\(directory): cannot publish \(asset): \(file) is missing")
        }
        switch state {
        case .published, .discarded: throw StoreError("\(directory): staging area already \(publishedOrDiscarded)")
        case .growing(let shown): return try finishGrowing(shown)
        case .staging: break
        }
        let lock = try lockAssetObjects()
        defer { close(lock) }
        if let publisher, let current = try store.publishedVersion(of: asset), !current.isGrowing, store.publisher(of: current) == publisher {
            discard()
            return current
        }
        if let publisher { try writeFile(Array(publisher.utf8), at: AssetStore.publisherFile, exclusive: true) }
        try syncWritten()
        let previous = try store.publishedVersion(of: asset)
        let version = try moveIntoObjects()
        try store.link(version)
        state = .published
        store.pruneVersions(of: asset, keeping: [version.version] + (previous.map { [$0.version] } ?? []))
        return version
    }

    /// Shows the version before it is whole, so players can start while the rest is written:
    /// the folder moves into the store's objects marked as growing (``AssetStore/growingMarker``),
    /// and the asset's link is swapped to it. Writing goes on into the same folder (by its
    /// descriptor); ``publish(requiredFiles:publisher:)`` ends the growth, ``discard()`` withdraws it.
    ///
    /// Only an asset with no current version is shown early, or one whose current version is
    /// still growing for the same publisher (an earlier attempt of this job died): a published
    /// asset is replaced only by a whole version. nil when the version was not shown.
    public func show(requiredFiles: [String], publisher: String) throws(StoreError) -> PublishedVersion? {
        guard case .staging = state else { throw StoreError("\(directory): only a staged version can be shown") }
        for file in requiredFiles where !contains(file) {
            throw StoreError("\(directory): cannot show \(asset): \(file) is missing")
        }
        let lock = try lockAssetObjects()
        defer { close(lock) }
        let current = try store.publishedVersion(of: asset)
        if let current, !(current.isGrowing && store.publisher(of: current) == publisher) { return nil }
        var version: PublishedVersion
        do {
            try writeFile(Array(publisher.utf8), at: AssetStore.publisherFile, exclusive: true)
            try writeFile([], at: AssetStore.growingMarker, exclusive: true)
            try syncWritten()
            version = try moveIntoObjects()
        } catch {
            // Still staged: the version is published whole at the end, without these two files.
            unlinkat(folderDescriptor, AssetStore.publisherFile, 0)
            unlinkat(folderDescriptor, AssetStore.growingMarker, 0)
            throw error
        }
        version.isGrowing = true
        do {
            try store.link(version)
        } catch {
            // The link may have been swapped before the failure (a flush that failed after it).
            store.withdrawGrowing(version, holdingLock: true)
            throw error
        }
        state = .growing(version)
        // An earlier attempt's growth was never whole: nobody is to play it to its end.
        store.pruneVersions(of: asset, keeping: [version.version])
        return version
    }

    /// Ends a shown version's growth: its files are all there, so the marker goes.
    private func finishGrowing(_ shown: PublishedVersion) throws(StoreError) -> PublishedVersion {
        let lock = try lockAssetObjects()
        defer { close(lock) }
        guard try store.publishedVersion(of: asset)?.version == shown.version else {
            throw StoreError("\(shown.directory): cannot publish \(asset): the version shown while it grew is no longer current")
        }
        try syncWritten()
        guard unlinkat(folderDescriptor, AssetStore.growingMarker, 0) == 0 || errno == ENOENT else {
            throw StoreError.system("cannot end the growth", path: shown.directory + "/" + AssetStore.growingMarker)
        }
        try StorePath.syncDirectory(shown.directory)
        state = .published
        var whole = shown
        whole.isGrowing = false
        return whole
    }

    /// Takes turns with every other publisher of the asset.
    private func lockAssetObjects() throws(StoreError) -> Int32 {
        let assetObjects = store.objectsRoot + "/" + asset.rawValue
        try StorePath.makeDirectory(assetObjects)
        return try StorePath.lockFolder(assetObjects)
    }

    /// Renames the staging folder to a new version's folder; from here on the area no longer
    /// removes its folder (the version is removed by the caller's failure, or stays published).
    private func moveIntoObjects() throws(StoreError) -> PublishedVersion {
        let assetObjects = store.objectsRoot + "/" + asset.rawValue
        let name = AssetStore.newVersionName()
        let destination = assetObjects + "/" + name
        guard rename(directory, destination) == 0 else {
            throw StoreError.system("cannot move the staged version to \(destination)", path: directory)
        }
        state = .published
        try StorePath.syncDirectory(assetObjects)
        return PublishedVersion(asset: asset, version: name, directory: destination)
    }
}

extension AssetStore {
    /// The hidden file of a version shown while it grows: its playlists still change.
    static let growingMarker = ".growing"

    /// Points the asset's link at `version` in one `rename(2)`; on failure the version's folder
    /// is removed (nothing reaches it).
    func link(_ version: PublishedVersion) throws(StoreError) {
        var linked = false
        defer { if !linked { try? FileManager.default.removeItem(atPath: version.directory) } }
        try StorePath.makeDirectory(assetsRoot)
        let link = assetsRoot + "/" + version.asset.rawValue
        let temporaryLink = assetsRoot + "/.\(version.asset.rawValue).\(version.version).link"
        guard symlink("../objects/\(version.asset.rawValue)/\(version.version)", temporaryLink) == 0 else {
            throw StoreError.system("cannot create the publish link", path: temporaryLink)
        }
        guard rename(temporaryLink, link) == 0 else {
            let error = StoreError.system("cannot swap the publish link", path: link)
            unlink(temporaryLink)
            throw error
        }
        linked = true
        try StorePath.syncDirectory(assetsRoot)
    }

    /// Withdraws a version shown while it grew and never made whole: the asset's link goes when
    /// it still names it (only an asset with no other current version is shown early), then its
    /// folder. Best effort: a folder left behind is only space.
    /// `holdingLock`: the caller holds the asset's lock already (a second `flock` from this
    /// process would wait for it forever).
    /// True when the link still named it (and is gone).
    @discardableResult
    func withdrawGrowing(_ shown: PublishedVersion, holdingLock: Bool = false) -> Bool {
        let assetObjects = objectsRoot + "/" + shown.asset.rawValue
        var lock: Int32 = -1
        if !holdingLock {
            guard let taken = try? StorePath.lockFolder(assetObjects) else { return false }
            lock = taken
        }
        defer { if lock >= 0 { close(lock) } }
        let current = (try? publishedVersion(of: shown.asset))??.version == shown.version
        if current {
            unlink(assetsRoot + "/" + shown.asset.rawValue)
            try? StorePath.syncDirectory(assetsRoot)
        }
        try? FileManager.default.removeItem(atPath: shown.directory)
        return current
    }

    /// Removes every version but the `kept` ones. Not by name order: two publishes within one
    /// second get names whose random suffixes may sort either way. Best effort: a version left
    /// behind is only wasted space.
    func pruneVersions(of asset: AssetID, keeping kept: [String]) {
        let folder = objectsRoot + "/" + asset.rawValue
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where AssetStore.isVersionName(name) && !kept.contains(name) {
            try? FileManager.default.removeItem(atPath: folder + "/" + name)
        }
    }
}
