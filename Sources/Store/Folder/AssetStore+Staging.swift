import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Staging folders and who owns them.
///
/// A staging folder has exactly one owner: whoever called ``AssetStore/stage(_:)`` or
/// ``AssetStore/stage(_:heldBy:)``. Only the owner removes it (``StagingArea/discard()``, or
/// ``AssetStore/discardStaging(of:heldBy:)`` for what an earlier holder left when it died); a
/// process handed the folder adopts it (``AssetStore/adoptStaging(_:for:)``) to write and publish.
extension AssetStore {
    /// A new, empty staging folder for `asset`, owned by the caller. Nothing in it is visible until
    /// ``StagingArea/publish(requiredFiles:publisher:)``.
    public func stage(_ asset: AssetID) throws(StoreError) -> StagingArea {
        try makeStagingFolder(prefix: asset.rawValue, asset: asset)
    }

    /// A new, empty staging folder for `asset`, owned by the caller and named for `holder` (a job's
    /// id, in the asset id grammar), so that whoever holds the job next can remove it with
    /// ``discardStaging(of:heldBy:)`` should the caller die before it does.
    public func stage(_ asset: AssetID, heldBy holder: String) throws(StoreError) -> StagingArea {
        guard AssetID.isValid(holder) else { throw StoreError("staging holder '\(holder.prefix(80))' is not a plain id") }
        return try makeStagingFolder(prefix: "\(asset.rawValue).\(holder)", asset: asset)
    }

    /// Opens a staging folder of `asset` that another process created (and owns), to write into and
    /// publish. The returned area never removes the folder. Refuses anything but a folder directly in
    /// this store's staging folder, named for `asset`, and not a link.
    public func adoptStaging(_ directory: String, for asset: AssetID) throws(StoreError) -> StagingArea {
        let directory = StorePath.absolute(directory)
        let name = directory.hasPrefix(stagingRoot + "/") ? String(directory.dropFirst(stagingRoot.count + 1)) : ""
        guard name.hasPrefix(asset.rawValue + "."), !name.contains("/") else {
            throw StoreError("\(directory): not a staging folder of \(asset) in the store \(root)")
        }
        var info = stat()
        guard lstat(directory, &info) == 0 else { throw StoreError.system("cannot open the staging folder", path: directory) }
        if info.st_mode & S_IFMT == S_IFLNK, let shown = shownVersion(bridgedBy: directory, of: asset) {
            // A split transcode's version shown while it grows: its parts write on in its new place.
            return try StagingArea(store: self, asset: asset, directory: shown.directory, ownsDirectory: false)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw StoreError("\(directory): the staging folder is not a folder") }
        return try StagingArea(store: self, asset: asset, directory: directory, ownsDirectory: false)
    }

    /// A shared staging folder (a split transcode's) moves into the objects when its version is
    /// shown growing; a link left in its place (``bridge(_:to:)``) leads the parts still to
    /// come to it. The version it names, only while that version is growing; nil for anything else.
    func shownVersion(bridgedBy link: String, of asset: AssetID) -> PublishedVersion? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink(link, &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let target = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let prefix = "../objects/\(asset.rawValue)/"
        let name = target.hasPrefix(prefix) ? String(target.dropFirst(prefix.count)) : ""
        guard Self.isVersionName(name) else { return nil }
        let directory = "\(objectsRoot)/\(asset.rawValue)/\(name)"
        guard access(directory + "/" + Self.growingMarker, F_OK) == 0 else { return nil }
        return PublishedVersion(asset: asset, version: name, directory: directory, isGrowing: true)
    }

    /// Leaves a link at a shown shared staging folder's old place, naming the version it became.
    func bridge(_ staging: String, to version: PublishedVersion) throws(StoreError) {
        guard symlink("../objects/\(version.asset.rawValue)/\(version.version)", staging) == 0 else {
            throw StoreError.system("cannot leave a link to the shown version", path: staging)
        }
    }

    /// The store a staging folder (`ROOT/staging/NAME`) belongs to: what a process handed only
    /// the folder opens to adopt it.
    public static func root(ofStaging folder: String) -> String {
        ((folder as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    }

    /// Removes every staging folder of `asset` made for `holder` (``stage(_:heldBy:)``): what an
    /// earlier holder of the same job left when it died, for the one that holds the job now.
    public func discardStaging(of asset: AssetID, heldBy holder: String) {
        guard AssetID.isValid(holder), let names = try? FileManager.default.contentsOfDirectory(atPath: stagingRoot) else { return }
        let prefix = "\(asset.rawValue).\(holder)."
        for name in names where name.hasPrefix(prefix) {
            Self.removeStagingFolder(stagingRoot + "/" + name)
        }
    }

    /// Moves the folder out of the way in one rename, then removes it: a publish racing with the
    /// removal (a process that outlived its attempt) finds the folder whole or gone, never half.
    static func removeStagingFolder(_ directory: String) {
        guard let slash = directory.lastIndex(of: "/") else { return }
        let doomed = String(directory[..<slash]) + "/.discarded-" + String(directory[directory.index(after: slash)...])
        if rename(directory, doomed) == 0 {
            try? FileManager.default.removeItem(atPath: doomed)
        } else if errno != ENOENT {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func makeStagingFolder(prefix: String, asset: AssetID) throws(StoreError) -> StagingArea {
        try StorePath.makeDirectory(stagingRoot)
        var template = Array("\(stagingRoot)/\(prefix).XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw StoreError.system("cannot create a staging folder", path: stagingRoot)
        }
        return try StagingArea(store: self, asset: asset, directory: String(cString: template), ownsDirectory: true)
    }
}
