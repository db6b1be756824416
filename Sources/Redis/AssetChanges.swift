extension RedisClient {
    /// Announces that an asset changed (republished, withdrawn, its policy set or removed) to every
    /// origin subscribed to ``Keyspace/assetChanges``; returns how many received it. The one other
    /// announcer is a job's finish script, which publishes on the same channel in the very step
    /// that records the new version.
    @discardableResult
    public func announceAssetChange(_ asset: String, in keys: Keyspace) async throws(RedisError) -> Int {
        Int(try await send(["PUBLISH", keys.assetChanges, asset]).int ?? 0)
    }

    /// Announces that the playlists of `asset`'s growing version changed (a segment was sealed):
    /// origins drop just those (``Keyspace/playlistsGrew``), not the asset's segments.
    @discardableResult
    public func announcePlaylistsGrew(_ asset: String, in keys: Keyspace) async throws(RedisError) -> Int {
        Int(try await send(["PUBLISH", keys.assetChanges, asset + Keyspace.playlistsGrew]).int ?? 0)
    }
}

extension Keyspace {
    /// The suffix of an asset-changes message that says only the asset's growing playlists changed.
    public static let playlistsGrew = "/playlists"
}
