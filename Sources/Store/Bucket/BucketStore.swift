import Foundation
import NIOCore
import S3

/// The bucket backend of ``AssetStorage``: assets as objects in an S3-compatible bucket, so no two
/// machines need to share a disk.
///
/// ```
/// PREFIX/objects/<asset>/<version>/<file>   a version's files, written before it is published
/// PREFIX/assets/<asset>                     the pointer: which version is current (JSON)
/// PREFIX/uploads/<id>.sealed                sealed uploads
/// ```
///
/// S3 has no rename. A version's objects are all written first; then the asset's pointer object is
/// replaced with a conditional PUT (`If-Match` on the ETag read, `If-None-Match: *` for the
/// first), which S3 applies atomically and reads back consistently: readers see the old version or
/// the new one, and two publishers racing cannot both win. The pointer names the version it
/// replaced, which stays readable.
public final class BucketStore: AssetStorage {
    public let client: S3Client
    public let bucket: String
    /// Every key starts with it: empty, or ending in `/`.
    public let prefix: String
    /// A version no pointer names is removed once it is this old (by its name's time): an
    /// attempt that died mid-upload leaves objects nobody will publish, but a version still
    /// being uploaded must not lose its objects under its writer.
    public let abandonedVersionAge: TimeInterval

    /// The largest pointer object read: it holds two version names and a job id.
    static let maximumPointerBytes = 16 << 10

    public init(client: S3Client, bucket: String, prefix: String, abandonedVersionAge: TimeInterval = 24 * 3600) {
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.abandonedVersionAge = abandonedVersionAge
    }

    public var location: String { "s3://\(bucket)/\(prefix)" }
    public var uploads: String { location + "uploads/" }

    public func checkReadable() async throws(StoreError) {
        do {
            _ = try await client.listObjects(bucket: bucket, prefix: prefix + "assets/", maxKeys: 1)
        } catch {
            throw StoreError("\(location): cannot list the bucket: \(error)")
        }
    }

    func pointerKey(_ asset: AssetID) -> String { "\(prefix)assets/" + asset.rawValue }
    func versionsPrefix(_ asset: AssetID) -> String { "\(prefix)objects/\(asset.rawValue)/" }
    func versionPrefix(_ asset: AssetID, _ version: String) -> String { "\(prefix)objects/\(asset.rawValue)/\(version)" }
    /// The key prefix of sealed uploads.
    public var uploadsPrefix: String { "\(prefix)uploads/" }

    func publishedVersion(_ asset: AssetID, _ version: String) -> PublishedVersion {
        PublishedVersion(asset: asset, version: version, directory: versionPrefix(asset, version))
    }

    // MARK: - Reading

    public func versions(of asset: AssetID) async throws(StoreError) -> AssetVersions {
        guard let (pointer, _) = try await readPointer(asset) else { return .none }
        var current = publishedVersion(asset, pointer.version)
        current.isGrowing = pointer.isGrowing
        var readable = [pointer.version: current]
        if let previous = pointer.previous { readable[previous] = publishedVersion(asset, previous) }
        return AssetVersions(current: current, publisher: pointer.publisher, readable: readable)
    }

    public func read<Bytes>(
        _ relative: String, of version: PublishedVersion, range: ClosedRange<Int>?, maximumBytes: Int,
        into make: @escaping @Sendable (_ size: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Bytes
    ) async throws -> StoredRead<Bytes>? {
        guard let key = version.path(of: relative) else { return nil }
        let object: S3ObjectStream
        do {
            object = try await client.getObject(bucket: bucket, key: key, range: range.map { .bytes(Int64($0.lowerBound)...Int64($0.upperBound)) })
        } catch let error as S3Error where error.isNotFound {
            return nil
        } catch let error as S3Error where error.status == 416 {
            // The range starts past the end: nothing to read, but the size is still the answer's.
            let size = try await client.headObject(bucket: bucket, key: key).size
            return StoredRead(bytes: try make(0) { _ in 0 }, totalSize: Int(size))
        } catch {
            throw StoreError("\(location): cannot read \(key): \(error)")
        }
        if let length = object.contentLength, length > maximumBytes {
            throw StoreError("s3://\(bucket)/\(key): \(length) bytes; at most \(maximumBytes) are read")
        }
        // The body's pieces as they arrive, copied once, into the caller's memory.
        var pieces: [ByteBuffer] = []
        var received = 0
        do {
            for try await piece in object.body {
                received += piece.readableBytes
                guard received <= maximumBytes else {
                    throw StoreError("s3://\(bucket)/\(key): more than \(maximumBytes) bytes; that many at most are read")
                }
                pieces.append(piece)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("s3://\(bucket)/\(key): reading the body: \(error)")
        }
        if let length = object.contentLength, received != length {
            throw StoreError("s3://\(bucket)/\(key): short body (\(received) of \(length) bytes)")
        }
        let bytes = try make(received) { target in
            var offset = 0
            for piece in pieces {
                piece.withUnsafeReadableBytes { UnsafeMutableRawBufferPointer(rebasing: target[offset...]).copyMemory(from: $0) }
                offset += piece.readableBytes
            }
            return offset
        }
        return StoredRead(bytes: bytes, totalSize: Int(object.info.size))
    }

    public func publishedAssets() async throws(StoreError) -> [AssetID] {
        let start = "\(prefix)assets/"
        do {
            var assets: [AssetID] = []
            for try await page in client.listAllObjects(bucket: bucket, prefix: start) {
                assets += page.objects.compactMap { try? AssetID(String($0.key.dropFirst(start.count))) }
            }
            return assets.sorted { $0.rawValue < $1.rawValue }
        } catch {
            throw StoreError("\(location): cannot list the assets: \(error)")
        }
    }

    public func unpublish(_ asset: AssetID) async throws(StoreError) {
        do {
            try await client.deleteObject(bucket: bucket, key: pointerKey(asset))
        } catch {
            throw StoreError("\(location): cannot withdraw \(asset): \(error)")
        }
        // Readers stopped seeing it with the pointer; what is left is only space.
        try? await deleteAll(under: versionsPrefix(asset))
    }

    public func withdrawGrowth(of asset: AssetID, by publisher: String) async -> Bool {
        guard let (pointer, _) = try? await readPointer(asset), pointer.isGrowing, pointer.publisher == publisher else { return false }
        let withdrawn = await withdrawGrowing(asset, version: pointer.version)
        try? await deleteAll(under: versionPrefix(asset, pointer.version) + "/")
        return withdrawn
    }

    // MARK: - Writing

    public func stage(_ asset: AssetID, heldBy holder: String, spool: String) async throws(StoreError) -> any VersionStaging {
        BucketStaging(store: self, area: try localArea(asset, heldBy: holder, spool: spool), version: AssetStore.newVersionName())
    }

    /// A worker's local folder for what `holder` writes on its way to the bucket, emptied of
    /// what an earlier attempt of the same holder left.
    func localArea(_ asset: AssetID, heldBy holder: String, spool: String) throws(StoreError) -> StagingArea {
        let local = try AssetStore(root: spool)
        local.discardStaging(of: asset, heldBy: holder)
        return try local.stage(asset, heldBy: holder)
    }

    /// Deletes every object under `keyPrefix`, a few at a time.
    func deleteAll(under keyPrefix: String) async throws {
        let keys = try await client.listAllObjects(bucket: bucket, prefix: keyPrefix).objects().map(\.key)
        try await deleteObjects(keys)
    }

    func deleteObjects(_ keys: [String]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, key) in keys.enumerated() {
                if index >= 8 { try await group.next() }
                group.addTask { try await self.client.deleteObject(bucket: self.bucket, key: key) }
            }
            try await group.waitForAll()
        }
    }
}
