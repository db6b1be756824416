extension RedisClient {
    /// Announces that an asset changed (republished, withdrawn, its policy set or removed) to every
    /// origin subscribed to ``Keyspace/assetChanges``; returns how many received it. The one other
    /// announcer is a job's finish script, which publishes on the same channel in the very step
    /// that records the new version.
    @discardableResult
    public func announceAssetChange(_ asset: String, in keys: Keyspace) async throws(RedisError) -> Int {
        Int(try await send(["PUBLISH", keys.assetChanges, asset]).int ?? 0)
    }
}
