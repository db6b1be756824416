/// A 256-bit data key wrapped by a master key with AES-256-GCM, as a sealed source's header holds
/// it. Unlike ``WrappedKey`` it has no identifier and no JSON form: its owner stores the parts.
struct WrappedDataKey: Sendable, Equatable {
    /// Data keys are AES-256 keys.
    static let keyLength = 32
    /// Which master key wrapped it (16 lowercase hex characters).
    let masterKeyID: String
    /// The 12-byte GCM nonce.
    let nonce: [UInt8]
    /// The 32-byte encrypted data key.
    let ciphertext: [UInt8]
    /// The 16-byte GCM tag.
    let tag: [UInt8]
}

extension Keyring {
    /// Wraps a data key with the current master key.
    func wrap(dataKey: [UInt8], context: [UInt8]) throws -> WrappedDataKey {
        try current.wrap(dataKey: dataKey, context: context)
    }
}
