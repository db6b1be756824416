import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import Store
import Synchronization

/// What the origin knows of each asset's versions, kept in memory so the hot path never asks the
/// store: the published version, and the versions still readable (the one before stays so
/// players that started on it can finish).
///
/// Answers are reused for `freshness`: long when Redis announces every change
/// (``OriginInvalidation``), a second otherwise. ``forget(_:)`` drops one asset at once.
final class AssetDirectory: Sendable {
    struct Entry: Sendable {
        var versions: AssetVersions
        var checkedAt: UInt64

        /// The version a URL names (nil: the published one), as this entry knows it.
        func resolve(_ versionName: String?) -> PublishedVersion? { versions.resolve(versionName) }
    }

    let store: any AssetStorage
    /// One read of an asset's versions at a time, however many requests find its entry stale: on
    /// a bucket each read is a GET of the pointer.
    private let reads = SingleFlight<Entry>()
    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    /// Nanoseconds an answer is reused; read on every lookup, changed when the invalidation
    /// channel goes up or down.
    private let freshness = Atomic<UInt64>(1_000_000_000)
    /// A versioned URL naming a version not seen yet (another replica published it a moment ago)
    /// asks the store again, but not more often than this.
    private let recheckAfter: UInt64 = 200_000_000

    init(store: any AssetStorage) {
        self.store = store
    }

    func setFreshness(seconds: Double) {
        freshness.store(UInt64(seconds * 1e9), ordering: .relaxed)
    }

    /// The version a URL names (`versionName`), or the published one when it names none; nil when
    /// there is no such version (any more). Known from memory while the asset's entry is fresh
    /// (for a version the entry does not list, while it is younger than ``recheckAfter``).
    func resolve(_ asset: AssetID, version versionName: String?) -> Lookup<PublishedVersion?> {
        if let versionName, !AssetStore.isVersionName(versionName) { return .known(nil) }
        let now = DispatchTime.now().uptimeNanoseconds
        let maximumAge = freshness.load(ordering: .relaxed)
        let recheckAfter = self.recheckAfter
        // Only the answer leaves the lock, not the entry with its versions.
        let known: PublishedVersion?? = entries.withLockedValue { entries in
            guard let entry = entries[asset.rawValue], now &- entry.checkedAt < maximumAge else { return nil }
            if let found = entry.resolve(versionName) { return .some(found) }
            return versionName == nil || now &- entry.checkedAt < recheckAfter ? .some(nil) : nil
        }
        if let known { return .known(known) }
        return .load { try await self.read(asset).resolve(versionName) }
    }

    /// Drops what is known of `asset`; the next request reads the store again.
    func forget(_ asset: String) {
        _ = entries.withLockedValue { $0.removeValue(forKey: asset) }
    }

    func forgetAll() {
        entries.withLockedValue { $0.removeAll() }
    }

    /// Asks the store for the asset's versions (once for every request waiting on it) and
    /// remembers them.
    private func read(_ asset: AssetID) async throws -> Entry {
        try await reads.value(for: asset.rawValue) { try await self.readNow(asset) }
    }

    private func readNow(_ asset: AssetID) async throws -> Entry {
        let now = DispatchTime.now().uptimeNanoseconds
        let fresh = Entry(versions: try await store.versions(of: asset), checkedAt: now)
        entries.withLockedValue { entries in
            // Keep the map from growing without bound under requests for many missing assets.
            if entries.count > 100_000 { entries.removeAll() }
            entries[asset.rawValue] = fresh
        }
        return fresh
    }
}
