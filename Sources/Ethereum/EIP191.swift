/// EIP-191 signed data, version `0x45` ("E"): what `personal_sign` and `eth_sign` of a message
/// sign, and so what EIP-4361 messages are signed as.
public enum EIP191 {
    private static let prefix = Array("\u{19}Ethereum Signed Message:\n".utf8)

    /// Keccak-256 of `"\u{19}Ethereum Signed Message:\n"`, the message's length in bytes in decimal,
    /// and the message.
    public static func personalMessageHash(_ message: [UInt8]) -> [UInt8] {
        var hasher = Keccak256()
        hasher.update(prefix)
        hasher.update(String(message.count).utf8)
        hasher.update(message)
        return hasher.finalize()
    }

    /// The hash of a text message's UTF-8 bytes.
    public static func personalMessageHash(_ message: String) -> [UInt8] {
        personalMessageHash(Array(message.utf8))
    }
}
