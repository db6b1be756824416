import Dispatch
import NIOConcurrencyHelpers

/// The playlists of versions still growing (``PublishedVersion/isGrowing``): the one kind of file
/// that changes under its URL. They never go to L1's long-lived store nor to L2; each is kept
/// here for at most ``lifetime`` and dropped at once when its worker announces the asset's
/// playlists grew (``OriginRoutes/assetChanged(_:)``), so no origin serves one much past its update.
final class GrowingPlaylists: Sendable {
    private struct Entry: Sendable {
        let object: CachedObject
        let expires: UInt64
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    /// Nanoseconds a playlist is reused without an announcement.
    let lifetime: UInt64

    init(lifetimeSeconds: Double = 1) {
        lifetime = UInt64(lifetimeSeconds * 1e9)
    }

    func get(_ key: String) -> CachedObject? {
        let now = DispatchTime.now().uptimeNanoseconds
        return entries.withLockedValue { entries in
            guard let entry = entries[key] else { return nil }
            guard now < entry.expires else {
                entries.removeValue(forKey: key)
                return nil
            }
            return entry.object
        }
    }

    func put(_ key: String, _ object: CachedObject) {
        let expires = DispatchTime.now().uptimeNanoseconds + lifetime
        entries.withLockedValue { entries in
            // A few playlists per growing asset: a map this large means entries nobody asks again.
            if entries.count >= 10_000 { entries.removeAll() }
            entries[key] = Entry(object: object, expires: expires)
        }
    }

    func removeAll(prefix: String) {
        entries.withLockedValue { entries in
            entries = entries.filter { !$0.key.hasPrefix(prefix) }
        }
    }
}
