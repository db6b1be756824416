import Foundation
import S3
import Store
import Vault

/// A job source in a bucket (`s3://bucket/key`): a sealed upload the origin stored, or a plain
/// file an ingest system put there. The worker reads it with ranged GETs (``S3ObjectReader``) and
/// serves the bytes to its transcode child, which has no network.
struct BucketSource {
    let bucket: String
    let key: String
    var url: String { "s3://\(bucket)/\(key)" }

    /// The bucket and key of an `s3://` URL; nil for anything else. Keys are S3's: any bytes but
    /// NUL and control characters, at most 1,024.
    init?(_ source: String) {
        guard source.hasPrefix("s3://") else { return nil }
        let rest = source.dropFirst("s3://".count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        bucket = String(rest[..<slash])
        key = String(rest[rest.index(after: slash)...])
        guard !bucket.isEmpty, !key.isEmpty, key.utf8.count <= 1024,
              !key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { return nil }
    }

    /// Why this worker may not read the source, or nil when it may: it needs a bucket store (whose
    /// client reaches the bucket), and the source must be under the store's uploads or one of the
    /// `s3://` source roots (with no roots at all, the queue's writers are trusted, as for paths).
    func problem(storage: any AssetStorage, roots: [String]) -> String? {
        guard storage is BucketStore else { return "\(url): a source in a bucket needs a bucket store (--store s3://…)" }
        guard !roots.isEmpty else { return nil }
        let allowed = roots.filter { $0.hasPrefix("s3://") }.map { $0.hasSuffix("/") ? $0 : $0 + "/" } + [storage.uploads]
        return allowed.contains { url.hasPrefix($0) } ? nil : "\(url) is not under a source folder of this worker"
    }

    /// Opens the object (one HEAD): nil when it does not exist.
    func open(in storage: any AssetStorage) async throws -> S3ObjectReader? {
        guard let store = storage as? BucketStore else { return nil }
        do {
            return try await S3ObjectReader.open(client: store.client, bucket: bucket, key: key)
        } catch let error as S3Error where error.isNotFound {
            return nil
        }
    }
}
