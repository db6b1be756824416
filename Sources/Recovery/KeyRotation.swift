import Foundation
import Store
import Vault

/// `streamgate rotate-master-key`: every content key of every readable version, wrapped under an
/// earlier master key, wrapped again under the current one. No segment changes (the content keys
/// stay the same); each key file is replaced atomically, and origins whose keyring holds both the
/// old and the new master key unwrap either, so playback never fails while it runs. Run it again
/// at will: a key already under the current master key is left alone.
public struct KeyRotation: Sendable {
    public struct Summary: Sendable, Equatable {
        public var assets = 0
        public var versions = 0
        public var rewrapped = 0
        /// Keys already under the current master key.
        public var current = 0
    }

    let store: any VersionFiles
    let keyring: Keyring

    public init(store: any VersionFiles, keyring: Keyring) {
        self.store = store
        self.keyring = keyring
    }

    public func run() async throws -> Summary {
        var summary = Summary()
        for asset in try await store.publishedAssets() {
            summary.assets += 1
            for version in try await store.versions(of: asset).readable.values.sorted(by: { $0.version < $1.version }) {
                summary.versions += 1
                for relative in try await store.files(of: version) where relative.hasPrefix("keys/") && relative.hasSuffix(".key") {
                    guard let bytes = try await store.bytes(of: relative, in: version, maximumBytes: 64 * 1024) else { continue }
                    let wrapped: WrappedKey
                    do {
                        wrapped = try WrappedKey(serialized: bytes)
                    } catch {
                        throw BackupError("\(asset)/\(version.version)/\(relative): not a wrapped key (\(error))")
                    }
                    if wrapped.masterKeyID == keyring.current.id {
                        summary.current += 1
                        continue
                    }
                    let key: ContentKey
                    do {
                        key = try keyring.unwrap(wrapped, context: asset.rawValue)
                    } catch {
                        throw BackupError("\(asset)/\(version.version)/\(relative): \(error)")
                    }
                    try await store.replaceWrappedKey(relative, of: version, with: try keyring.wrap(key, context: asset.rawValue).serialized())
                    summary.rewrapped += 1
                }
            }
        }
        return summary
    }
}
