import NIOCore

/// Where assets live, whatever holds them: a folder (``AssetStore``) or a bucket
/// (``BucketStore``). The origin reads through it, a worker publishes through it, the API
/// withdraws through it; nothing above the store knows which backend it has.
///
/// Both backends keep the same promises: a version is written whole before one small write makes
/// it current (a link renamed over the old one, or a pointer object swapped with `If-Match`); the
/// version it replaced stays readable, so players that started on it can finish; a publisher
/// (a job) that finds the current version already its own publishes nothing new.
public protocol AssetStorage: Sendable {
    /// The folder, or `s3://bucket/prefix`: for messages and logs.
    var location: String { get }

    /// The asset's published version and the versions still readable; `.none` when it was never
    /// published (or was withdrawn).
    func versions(of asset: AssetID) async throws(StoreError) -> AssetVersions

    /// Reads the file `relative` of `version`, whole or the bytes of `range`, into memory the
    /// caller makes: `make(size, fill)` gets the byte count and a function that writes them into
    /// the buffer it is given and returns how many it wrote. nil when there is no such file.
    /// Refused (a ``StoreError``) past `maximumBytes`.
    func read<Bytes>(
        _ relative: String, of version: PublishedVersion, range: ClosedRange<Int>?, maximumBytes: Int,
        into make: @escaping @Sendable (_ size: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Bytes
    ) async throws -> StoredRead<Bytes>?

    /// Where sealed uploads are kept: a folder, or `s3://bucket/prefix/uploads/`.
    var uploads: String { get }

    /// Throws when the store cannot be read (a missing folder, an unreachable bucket, refused
    /// credentials): what `/readyz` asks.
    func checkReadable() async throws(StoreError)

    /// Every asset with a published version, sorted.
    func publishedAssets() async throws(StoreError) -> [AssetID]

    /// Withdraws an asset: readers stop seeing it at once; its versions are removed after.
    func unpublish(_ asset: AssetID) async throws(StoreError)

    /// Withdraws `asset`'s current version only if it is still growing and `publisher` showed it
    /// (a job whose attempt died, or ended without making it whole); any other version is left
    /// alone. Best effort; true when a version was withdrawn.
    func withdrawGrowth(of asset: AssetID, by publisher: String) async -> Bool

    /// A new version of `asset` being written by the attempt `holder` (a job's id) of a worker:
    /// a local folder a transcode writes into, whose files reach the store as they are finished
    /// (``VersionStaging/stored(_:)``) or at ``VersionStaging/publish(requiredFiles:publisher:)``.
    /// What an earlier attempt of the same holder left behind is removed first. `spool` is a
    /// local folder for backends that keep nothing on this machine.
    func stage(_ asset: AssetID, heldBy holder: String, spool: String) async throws(StoreError) -> any VersionStaging
}

/// What a read returned: the bytes and the object's whole size (for `Content-Range`).
public struct StoredRead<Bytes> {
    public var bytes: Bytes
    public var totalSize: Int

    public init(bytes: Bytes, totalSize: Int) {
        self.bytes = bytes
        self.totalSize = totalSize
    }
}

extension StoredRead: Sendable where Bytes: Sendable {}

/// The versions of one asset a reader may see.
public struct AssetVersions: Sendable, Equatable {
    /// The published version; nil when the asset was never published, or was withdrawn.
    public var current: PublishedVersion?
    /// Who published ``current`` (a job's id), when it was recorded.
    public var publisher: String?
    /// Every version that may still be read, the published one included, by name.
    public var readable: [String: PublishedVersion]

    public static let none = AssetVersions(current: nil, publisher: nil, readable: [:])

    public init(current: PublishedVersion?, publisher: String?, readable: [String: PublishedVersion]) {
        self.current = current
        self.publisher = publisher
        self.readable = readable
    }

    /// The version a URL names (nil: the published one).
    public func resolve(_ versionName: String?) -> PublishedVersion? {
        guard let versionName else { return current }
        return readable[versionName]
    }
}

/// A version being written for a worker's attempt. The transcode child writes its files into
/// ``folder``; the worker calls ``stored(_:)`` as each is finished (a sealed segment goes to the
/// store at once, not after the ladder), then ``publish(requiredFiles:publisher:)`` or
/// ``discard()``. Used by one task at a time.
public protocol VersionStaging: AnyObject, Sendable {
    var asset: AssetID { get }
    /// The local folder the version's files are written into.
    var folder: String { get }
    /// The file `relative` of ``folder`` is complete: a backend that keeps the store elsewhere
    /// sends it now (and may remove the local copy).
    func stored(_ relative: String) async throws(StoreError)
    /// Makes the version current before it is whole, marked growing, so players start while the
    /// rest is stored (``StagingArea/show(requiredFiles:publisher:)``): only for an asset with no
    /// current version, or whose current one is this publisher's and still growing (an earlier
    /// attempt died). nil when it was not shown: it is published whole at the end instead.
    func show(requiredFiles: [String], publisher: String) async throws(StoreError) -> PublishedVersion?
    /// Makes the version current and whole, atomically (see ``StagingArea/publish(requiredFiles:publisher:)``
    /// for `requiredFiles` and `publisher`); a version shown while it grew stops growing.
    func publish(requiredFiles: [String], publisher: String?) async throws(StoreError) -> PublishedVersion
    /// Ends the attempt unpublished: what it wrote is removed, and a version shown while it grew
    /// is withdrawn. Safe to call more than once.
    func discard() async
}

extension PublishedVersion {
    /// The files without which a version is not an asset: nothing is published without them.
    public static let requiredFiles = ["master.m3u8", "asset.json"]
    /// The file without which a growing version is not shown: the multivariant playlist, written
    /// once every rendition it lists has a segment.
    public static let requiredFilesToShow = ["master.m3u8"]
}

extension AssetStorage {
    /// The version a URL names, or the published one.
    public func version(_ name: String?, of asset: AssetID) async throws(StoreError) -> PublishedVersion? {
        try await versions(of: asset).resolve(name)
    }

    /// A whole file of a version into a `ByteBuffer`; nil when there is no such file.
    public func readBuffer(_ relative: String, of version: PublishedVersion, maximumBytes: Int) async throws -> ByteBuffer? {
        try await read(relative, of: version, range: nil, maximumBytes: maximumBytes) { size, fill in
            var buffer = ByteBufferAllocator().buffer(capacity: size)
            _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { try fill(UnsafeMutableRawBufferPointer(rebasing: $0.prefix(size))) }
            return buffer
        }?.bytes
    }
}
