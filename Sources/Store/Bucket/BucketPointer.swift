import Foundation
import NIOCore
import S3

/// The object that makes a version current: which version, who published it, and the one it
/// replaced (kept readable).
struct BucketPointer: Codable, Equatable {
    var version: String
    var publisher: String?
    var previous: String?
    /// The version is shown while it is still being written: its playlists grow. Absent once whole.
    var growing: Bool?

    var isGrowing: Bool { growing == true }

    /// Refuses a pointer naming anything but versions: a version name is part of every key read.
    func checked(key: String) throws(StoreError) -> BucketPointer {
        guard AssetStore.isVersionName(version), previous.map(AssetStore.isVersionName) ?? true else {
            throw StoreError("\(key): the pointer names no version ('\(version.prefix(40))')")
        }
        return self
    }
}

extension BucketStore {
    /// The asset's pointer and its ETag; nil when there is none.
    func readPointer(_ asset: AssetID) async throws(StoreError) -> (BucketPointer, eTag: String?)? {
        let key = pointerKey(asset)
        do {
            let object = try await client.getObject(bucket: bucket, key: key)
            let body = try await object.body.collect(upTo: Self.maximumPointerBytes)
            let pointer = try JSONDecoder().decode(BucketPointer.self, from: Data(body.readableBytesView))
            return (try pointer.checked(key: "s3://\(bucket)/\(key)"), object.info.eTag)
        } catch let error as S3Error where error.isNotFound {
            return nil
        } catch let error as StoreError {
            throw error
        } catch is DecodingError {
            throw StoreError("s3://\(bucket)/\(key): the pointer is not the JSON StreamGate writes")
        } catch {
            throw StoreError("s3://\(bucket)/\(key): cannot read the pointer: \(error)")
        }
    }

    /// Makes `version` the asset's current version: whole (every object of it written), or
    /// `growing` (shown while the rest is written).
    ///
    /// Reads the pointer, then writes the new one only if the pointer is still what was read
    /// (`If-Match`, or `If-None-Match: *` when there was none); a publisher that lost the race
    /// reads again and retries. When the current version is already `publisher`'s and whole (an
    /// earlier attempt of the same job published it, then its worker died), nothing is written and
    /// that version is returned as `.alreadyPublished`. A growing version is shown only in place of
    /// none, or of a growing one of the same publisher (an earlier attempt's, never made whole):
    /// `.notShown` otherwise.
    func swapPointer(_ asset: AssetID, to version: String, publisher: String?, growing: Bool = false) async throws(StoreError) -> PointerSwap {
        let key = pointerKey(asset)
        for _ in 0..<16 {
            let read = try await readPointer(asset)
            let current = read?.0
            let ownGrowth = current.map { $0.isGrowing && $0.publisher == publisher && publisher != nil } ?? false
            if let publisher, let current, current.publisher == publisher, !current.isGrowing {
                return .alreadyPublished(publishedVersion(asset, current.version))
            }
            if growing, current != nil, !ownGrowth { return .notShown }
            // A growing version replaced by its own publisher was never whole: it is not kept readable.
            let previous = ownGrowth ? current?.previous : current?.version
            let next = BucketPointer(version: version, publisher: publisher, previous: previous == version ? nil : previous, growing: growing ? true : nil)
            let body = ByteBuffer(bytes: try! JSONEncoder().encode(next))
            do {
                try await client.putObject(
                    bucket: bucket, key: key, body: body, contentType: "application/json",
                    ifNoneMatch: read == nil, ifMatch: read?.eTag
                )
                return .swapped(PublishedVersion(asset: asset, version: version, directory: versionPrefix(asset, version), isGrowing: growing))
            } catch let error as S3Error where error.status == 412 || error.status == 409 {
                // Another publisher changed the pointer since it was read (409: a conditional
                // write in flight on the same key). Read it again.
                try? await Task.sleep(for: .milliseconds(Int.random(in: 10...100)))
                continue
            } catch {
                throw StoreError("s3://\(bucket)/\(key): cannot publish \(version): \(error)")
            }
        }
        throw StoreError("s3://\(bucket)/\(key): cannot publish \(version): the pointer kept changing under 16 attempts")
    }

    /// What ``swapPointer(_:to:publisher:growing:)`` did.
    enum PointerSwap {
        case swapped(PublishedVersion)
        case alreadyPublished(PublishedVersion)
        case notShown
    }

    /// Withdraws a version shown while it grew: the pointer goes when it still names that version
    /// (only an asset with no other current version is shown early). Best effort.
    /// True when the pointer named it (and is gone).
    @discardableResult
    func withdrawGrowing(_ asset: AssetID, version: String) async -> Bool {
        guard let (pointer, _) = try? await readPointer(asset), pointer.version == version, pointer.isGrowing else { return false }
        return (try? await client.deleteObject(bucket: bucket, key: pointerKey(asset))) != nil
    }

    /// Removes the versions of `asset` no pointer names any more and no writer may still be
    /// uploading (older than ``abandonedVersionAge``). Best effort: a version left is only space.
    func pruneVersions(of asset: AssetID, keeping kept: Set<String>) async {
        guard let listing = try? await client.listObjects(bucket: bucket, prefix: versionsPrefix(asset), delimiter: "/") else { return }
        let cutoff = Date().addingTimeInterval(-abandonedVersionAge)
        for folder in listing.commonPrefixes {
            let name = String(folder.dropFirst(versionsPrefix(asset).count).dropLast())
            guard AssetStore.isVersionName(name), !kept.contains(name),
                  let made = Self.creationTime(ofVersion: name), made < cutoff
            else { continue }
            try? await deleteAll(under: folder)
        }
    }

    /// The UTC time a version name starts with (`v20261123T171900Z-…`).
    static func creationTime(ofVersion name: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "'v'yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: String(name.prefix(17)))
    }
}
