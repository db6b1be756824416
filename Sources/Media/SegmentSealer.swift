import Store
import Vault

/// One written segment, as the playlists need it.
struct SealedSegment {
    var index: Int
    var fileName: String
    /// Seconds.
    var duration: Double
    /// Bytes at rest (ciphertext, padding included): what a player downloads.
    var size: Int
    var keyID: String
    var iv: [UInt8]
}

/// Encrypts segments in memory under the asset's content keys and writes the ciphertext to staging.
///
/// A content key covers `rotation` consecutive segment indexes (all of them when 0), the same on
/// every rendition, so a player switching renditions keeps its key. Each segment has its own random
/// IV, written into the playlist, so no two segments share a CBC IV under one key.
///
/// Each key is stored (wrapped by the master key, as `keys/<id>.key`) the moment it is made, before
/// the first segment it encrypts: a growing playlist may list that segment right after.
final class SegmentSealer {
    private let staging: StagingArea
    private let keyring: Keyring
    private let assetID: AssetID
    private let rotation: Int
    private(set) var keys: [ContentKey] = []
    /// Bytes written so far, and the most allowed (``InputLimits/maxOutputBytes``).
    private var written = 0
    private let maxBytes: Int

    init(staging: StagingArea, keyring: Keyring, assetID: AssetID, rotation: Int, maxBytes: Int = .max) {
        self.staging = staging
        self.keyring = keyring
        self.assetID = assetID
        self.rotation = rotation
        self.maxBytes = maxBytes
    }

    func key(forSegment index: Int) throws -> ContentKey {
        let slot = rotation > 0 ? index / rotation : 0
        while keys.count <= slot {
            let key = try ContentKey.generate()
            let wrapped = try keyring.wrap(key, context: assetID.rawValue)
            try staging.write(wrapped.serialized(), to: "keys/\(key.id).key")
            keys.append(key)
        }
        return keys[slot]
    }

    /// Encrypts `plaintext` and writes it to `<rendition>/<file>`; the plaintext never touches disk.
    func seal(_ plaintext: [UInt8], rendition: String, index: Int, fileName: String, duration: Double) throws -> SealedSegment {
        let key = try key(forSegment: index)
        let iv = try SecureRandom.bytes(16)
        let ciphertext = try AES128CBC.encrypt(plaintext, key: key.bytes, iv: iv)
        written += ciphertext.count
        guard written <= maxBytes else {
            throw MediaError(operation: "write segments", reason: "the output would exceed its limit of \(maxBytes) bytes")
        }
        try staging.write(ciphertext, to: "\(rendition)/\(fileName)")
        return SealedSegment(index: index, fileName: fileName, duration: duration, size: ciphertext.count, keyID: key.id, iv: iv)
    }
}
