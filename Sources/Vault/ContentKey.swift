/// A 128-bit content key: the AES-128 key that encrypts an asset's segments.
///
/// Content keys are stored only wrapped by the master key (see ``MasterKey/wrap(_:context:)``).
/// The identifier is random, not derived from the key, so publishing it (in key URIs and file
/// names) reveals nothing about the key.
public struct ContentKey: Sendable, Equatable {
    /// 32 lowercase hex characters.
    public let id: String
    /// The 16 key bytes.
    public let bytes: [UInt8]

    /// Creates a content key from an identifier and 16 key bytes.
    public init(id: String, bytes: [UInt8]) throws {
        guard Hex.isLowercase(id, count: 32) else {
            throw VaultError("content key id must be 32 lowercase hex characters, got '\(id)'")
        }
        guard bytes.count == 16 else {
            throw VaultError("content key \(id) must be 16 bytes, got \(bytes.count)")
        }
        self.id = id
        self.bytes = bytes
    }

    /// A new random content key with a new random identifier.
    public static func generate() throws -> ContentKey {
        try ContentKey(id: Hex.encode(SecureRandom.bytes(16)), bytes: SecureRandom.bytes(16))
    }
}

extension ContentKey: CustomStringConvertible {
    /// Names the key by its identifier only, so logging a key never logs its bytes.
    public var description: String { "ContentKey(\(id))" }
}
