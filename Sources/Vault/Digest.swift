import COpenSSL

/// Message digests and MACs through OpenSSL's EVP interface.
public enum Digest {
    /// SHA-1, as lowercase hex: only for naming things (Redis script ids), never for security.
    public static func sha1Hex(_ bytes: [UInt8]) -> String {
        Hex.encode(digest(bytes, EVP_sha1()))
    }

    /// SHA-256 of `bytes`.
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        digest(bytes, EVP_sha256())
    }

    /// HMAC-SHA256 of `message` under `key`.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let done = key.withUnsafeBufferPointer { keyBuffer in
            message.withUnsafeBufferPointer { messageBuffer in
                HMAC(EVP_sha256(), keyBuffer.baseAddress, Int32(key.count), messageBuffer.baseAddress, message.count, &output, &length)
            }
        }
        precondition(done != nil, "HMAC-SHA256 failed")
        return Array(output.prefix(Int(length)))
    }

    /// Lowercase hex of any bytes.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String { Hex.encode(bytes) }

    /// Compares two MACs in time independent of where they differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { left in b.withUnsafeBytes { right in CRYPTO_memcmp(left.baseAddress, right.baseAddress, a.count) == 0 } }
    }

    private static func digest(_ bytes: [UInt8], _ type: OpaquePointer?) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let done = bytes.withUnsafeBufferPointer { buffer in
            EVP_Digest(buffer.baseAddress, buffer.count, &output, &length, type, nil)
        }
        precondition(done == 1, "digest failed")
        return Array(output.prefix(Int(length)))
    }
}

/// SHA-256 fed piece by piece (a file too large to hold): `update` with each piece, then `finish`
/// for the lowercase hex digest. One owner, used once.
public struct SHA256Stream: ~Copyable {
    private let context: OpaquePointer

    public init() {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        precondition(EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1, "SHA-256 init failed")
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            precondition(EVP_DigestUpdate(context, buffer.baseAddress, buffer.count) == 1, "SHA-256 update failed")
        }
    }

    public consuming func finish() -> String {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(context, &output, &length) == 1, "SHA-256 final failed")
        return Hex.encode(output.prefix(Int(length)))
    }
}
