import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import Store
import Synchronization

/// What the origin knows of each asset's versions, kept in memory so the hot path never touches
/// the filesystem: the published version, and the versions still on disk (the one before stays so
/// players that started on it can finish).
///
/// Answers are reused for `freshness`: long when Redis announces every change
/// (``OriginInvalidation``), a second otherwise. ``forget(_:)`` drops one asset at once.
final class AssetDirectory: Sendable {
    struct Entry: Sendable {
        var current: PublishedVersion?
        var onDisk: [String]
        var checkedAt: UInt64
    }

    let store: AssetStore
    let threadPool: NIOThreadPool
    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    /// Nanoseconds an answer is reused; read on every lookup, changed when the invalidation
    /// channel goes up or down.
    private let freshness = Atomic<UInt64>(1_000_000_000)
    /// A versioned URL naming a version not seen yet (another replica published it a moment ago)
    /// rereads the folder, but not more often than this.
    private let recheckAfter: UInt64 = 200_000_000

    init(store: AssetStore, threadPool: NIOThreadPool) {
        self.store = store
        self.threadPool = threadPool
    }

    func setFreshness(seconds: Double) {
        freshness.store(UInt64(seconds * 1e9), ordering: .relaxed)
    }

    /// The published version, or nil when the asset does not exist (any more).
    func current(_ asset: AssetID) async throws -> PublishedVersion? {
        try await entry(asset, olderThan: nil).current
    }

    /// `name` when it is a version of `asset` still on disk, or nil.
    func version(_ name: String, of asset: AssetID) async throws -> PublishedVersion? {
        var entry = try await entry(asset, olderThan: nil)
        if !entry.onDisk.contains(name) {
            entry = try await self.entry(asset, olderThan: recheckAfter)
            guard entry.onDisk.contains(name) else { return nil }
        }
        if entry.current?.version == name { return entry.current }
        return store.version(name, of: asset)
    }

    /// The version a URL names (`versionName`), or the published one when it names none; nil when
    /// there is no such version (any more).
    func resolve(_ asset: AssetID, version versionName: String?) async throws -> PublishedVersion? {
        guard let versionName else { return try await current(asset) }
        return AssetStore.isVersionName(versionName) ? try await version(versionName, of: asset) : nil
    }

    /// ``resolve(_:version:)`` when memory can answer it now: the published version (when the URL
    /// names none, or names it) while its entry is fresh; nil otherwise, whatever the store holds.
    func resolveFromMemory(_ asset: AssetID, version versionName: String?) -> PublishedVersion? {
        // Only the published version leaves the lock (not the entry with its list of versions).
        guard let current = fresh(asset, maximumAge: freshness.load(ordering: .relaxed), \.current) ?? nil else { return nil }
        guard let versionName else { return current }
        return current.version == versionName ? current : nil
    }

    /// Drops what is known of `asset`; the next request reads the store again.
    func forget(_ asset: String) {
        _ = entries.withLockedValue { $0.removeValue(forKey: asset) }
    }

    func forgetAll() {
        entries.withLockedValue { $0.removeAll() }
    }

    /// The cached entry when younger than `maximumAge` nanoseconds; nil otherwise.
    private func freshEntry(_ asset: AssetID, maximumAge: UInt64) -> Entry? {
        fresh(asset, maximumAge: maximumAge) { $0 }
    }

    /// `part` of the cached entry, read under the lock, when the entry is younger than
    /// `maximumAge` nanoseconds; nil otherwise.
    private func fresh<Part>(_ asset: AssetID, maximumAge: UInt64, _ part: (Entry) -> Part) -> Part? {
        let now = DispatchTime.now().uptimeNanoseconds
        return entries.withLockedValue { entries in
            guard let known = entries[asset.rawValue], now &- known.checkedAt < maximumAge else { return nil }
            return part(known)
        }
    }

    /// The cached entry when younger than the freshness (or than `olderThan` when given), else a
    /// fresh read on the thread pool.
    private func entry(_ asset: AssetID, olderThan limit: UInt64?) async throws -> Entry {
        if let known = freshEntry(asset, maximumAge: limit ?? freshness.load(ordering: .relaxed)) { return known }
        let now = DispatchTime.now().uptimeNanoseconds
        let store = self.store
        let fresh = try await threadPool.runIfActive {
            Entry(current: try store.publishedVersion(of: asset), onDisk: store.versionsOnDisk(of: asset), checkedAt: now)
        }
        entries.withLockedValue { entries in
            // Keep the map from growing without bound under requests for many missing assets.
            if entries.count > 100_000 { entries.removeAll() }
            entries[asset.rawValue] = fresh
        }
        return fresh
    }
}
