import NIOConcurrencyHelpers

/// An origin's store with a second to read from when the first fails (another region's copy,
/// kept by bucket replication or by `streamgate backup` and `restore`): every read goes to the
/// primary; one that fails (an error, not a missing file) is answered from the secondary. Writes
/// go to the primary only: this is for serving. A primary that answers "no such asset" while it
/// fails its own health check (its folder gone, its bucket unreachable) counts as failed too.
///
/// The copy may name its versions differently (a restored copy publishes new versions): a read of
/// a primary version the secondary lacks reads the same file of the secondary's current version,
/// whose files are the same bytes.
public final class FailoverStorage: AssetStorage {
    public let primary: any AssetStorage
    public let secondary: any AssetStorage
    /// Version folders (or key prefixes) the secondary gave: read from it alone.
    private let secondaryDirectories = NIOLockedValueBox<Set<String>>([])
    /// The primary's health check, asked at most once a second: (when, healthy).
    private let health = NIOLockedValueBox<(at: ContinuousClock.Instant, healthy: Bool)?>(nil)
    /// Told why, each time the secondary answers in the primary's place (to log and count).
    private let onFailover: @Sendable (String) -> Void

    public init(primary: any AssetStorage, secondary: any AssetStorage, onFailover: @escaping @Sendable (String) -> Void = { _ in }) {
        self.primary = primary
        self.secondary = secondary
        self.onFailover = onFailover
    }

    public var location: String { primary.location }
    public var uploads: String { primary.uploads }

    public func versions(of asset: AssetID) async throws(StoreError) -> AssetVersions {
        do throws(StoreError) {
            let versions = try await primary.versions(of: asset)
            if versions.current == nil, let why = await primaryFailure() { throw why }
            return versions
        } catch {
            let versions = try await fallBack(error) { () async throws(StoreError) in try await secondary.versions(of: asset) }
            secondaryDirectories.withLockedValue { known in
                if known.count > 65_536 { known.removeAll() }
                for version in versions.readable.values { known.insert(version.directory) }
            }
            return versions
        }
    }

    public func read<Bytes>(
        _ relative: String, of version: PublishedVersion, range: ClosedRange<Int>?, maximumBytes: Int,
        into make: @escaping @Sendable (_ size: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Bytes
    ) async throws -> StoredRead<Bytes>? {
        if secondaryDirectories.withLockedValue({ $0.contains(version.directory) }) {
            return try await secondary.read(relative, of: version, range: range, maximumBytes: maximumBytes, into: make)
        }
        do {
            let read = try await primary.read(relative, of: version, range: range, maximumBytes: maximumBytes, into: make)
            if read == nil, let why = await primaryFailure() { throw why }
            return read
        } catch {
            onFailover("\(primary.location): \(error)")
            let copies = try await secondary.versions(of: version.asset)
            guard let copy = copies.resolve(version.version) ?? copies.current else { return nil }
            return try await secondary.read(relative, of: copy, range: range, maximumBytes: maximumBytes, into: make)
        }
    }

    public func checkReadable() async throws(StoreError) {
        do {
            try await primary.checkReadable()
        } catch {
            // Still serving from the copy: ready, but said.
            _ = try await fallBack(error) { () async throws(StoreError) in try await secondary.checkReadable() }
        }
    }

    public func publishedAssets() async throws(StoreError) -> [AssetID] {
        do {
            return try await primary.publishedAssets()
        } catch {
            return try await fallBack(error) { () async throws(StoreError) in try await secondary.publishedAssets() }
        }
    }

    public func unpublish(_ asset: AssetID) async throws(StoreError) { try await primary.unpublish(asset) }

    public func withdrawGrowth(of asset: AssetID, by publisher: String) async -> Bool {
        await primary.withdrawGrowth(of: asset, by: publisher)
    }

    public func stage(_ asset: AssetID, heldBy holder: String, spool: String) async throws(StoreError) -> any VersionStaging {
        try await primary.stage(asset, heldBy: holder, spool: spool)
    }

    /// Why the primary is failing, when its health check says it is (asked at most once a second).
    private func primaryFailure() async -> StoreError? {
        let now = ContinuousClock.now
        if let known = health.withLockedValue({ $0 }), now - known.at < .seconds(1) {
            return known.healthy ? nil : StoreError("\(primary.location) is not readable")
        }
        var failure: StoreError?
        do { try await primary.checkReadable() } catch { failure = error }
        health.withLockedValue { $0 = (now, failure == nil) }
        return failure
    }

    private func fallBack<Value>(_ error: StoreError, _ read: () async throws(StoreError) -> Value) async throws(StoreError) -> Value {
        onFailover("\(primary.location): \(error)")
        do {
            return try await read()
        } catch let copyError {
            throw StoreError("\(primary.location) failed (\(error)), and so did its copy \(secondary.location) (\(copyError))")
        }
    }
}
