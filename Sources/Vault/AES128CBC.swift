import COpenSSL

/// AES-128-CBC as HLS uses it for segment encryption (RFC 8216 §5.2): the whole segment is one
/// message, padded with PKCS7, with an explicit 16-byte IV.
public enum AES128CBC {
    /// How the final block is padded.
    public enum Padding: Sendable {
        /// PKCS7 padding, as RFC 8216 requires for segments.
        case pkcs7
        /// No padding: the input must be a whole number of 16-byte blocks. For test vectors
        /// and for callers that pad themselves.
        case none
    }

    /// The AES block size in bytes.
    public static let blockSize = 16

    /// Ciphertext length for a plaintext length with PKCS7 padding: `((n / 16) + 1) * 16`.
    /// A whole number of blocks still gains a full block of padding.
    public static func ciphertextLength(plaintextLength: Int) -> Int {
        (plaintextLength / blockSize + 1) * blockSize
    }

    /// Encrypts `plaintext` with PKCS7 padding (or none). `key` and `iv` are 16 bytes each.
    ///
    /// The output is written straight into one preallocated array, so a multi-megabyte segment
    /// costs one allocation and no copies.
    public static func encrypt(
        _ plaintext: UnsafeRawBufferPointer, key: [UInt8], iv: [UInt8], padding: Padding = .pkcs7
    ) throws -> [UInt8] {
        try validate(key: key, iv: iv, operation: "AES-128-CBC encrypt")
        let capacity: Int
        switch padding {
        case .pkcs7:
            capacity = ciphertextLength(plaintextLength: plaintext.count)
        case .none:
            guard plaintext.count % blockSize == 0 else {
                throw VaultError("AES-128-CBC encrypt: without padding the plaintext must be a multiple of 16 bytes, got \(plaintext.count)")
            }
            capacity = plaintext.count
        }
        return try run(encrypt: true, input: plaintext, capacity: capacity, key: key, iv: iv, padding: padding)
    }

    /// Encrypts `plaintext` with PKCS7 padding (or none). `key` and `iv` are 16 bytes each.
    public static func encrypt(
        _ plaintext: [UInt8], key: [UInt8], iv: [UInt8], padding: Padding = .pkcs7
    ) throws -> [UInt8] {
        try plaintext.withUnsafeBytes { try encrypt($0, key: key, iv: iv, padding: padding) }
    }

    /// Decrypts `ciphertext` and removes PKCS7 padding (unless `padding` is `.none`).
    ///
    /// A wrong key, a wrong IV or corrupted data usually shows up as bad padding; that is
    /// reported as an error rather than returning garbage.
    public static func decrypt(
        _ ciphertext: UnsafeRawBufferPointer, key: [UInt8], iv: [UInt8], padding: Padding = .pkcs7
    ) throws -> [UInt8] {
        try validate(key: key, iv: iv, operation: "AES-128-CBC decrypt")
        guard ciphertext.count % blockSize == 0, padding == .none || ciphertext.count > 0 else {
            throw VaultError("AES-128-CBC decrypt: ciphertext must be a non-empty multiple of 16 bytes, got \(ciphertext.count)")
        }
        // OpenSSL may write up to one block more than the input in DecryptUpdate before it
        // knows which block is the last; the array is trimmed to the real length afterwards.
        return try run(encrypt: false, input: ciphertext, capacity: ciphertext.count + blockSize, key: key, iv: iv, padding: padding)
    }

    /// Decrypts `ciphertext` and removes PKCS7 padding (unless `padding` is `.none`).
    public static func decrypt(
        _ ciphertext: [UInt8], key: [UInt8], iv: [UInt8], padding: Padding = .pkcs7
    ) throws -> [UInt8] {
        try ciphertext.withUnsafeBytes { try decrypt($0, key: key, iv: iv, padding: padding) }
    }

    private static func validate(key: [UInt8], iv: [UInt8], operation: String) throws {
        guard key.count == 16 else { throw VaultError("\(operation): key must be 16 bytes, got \(key.count)") }
        guard iv.count == 16 else { throw VaultError("\(operation): IV must be 16 bytes, got \(iv.count)") }
    }

    private static func run(
        encrypt: Bool, input: UnsafeRawBufferPointer, capacity: Int,
        key: [UInt8], iv: [UInt8], padding: Padding
    ) throws -> [UInt8] {
        let name = encrypt ? "AES-128-CBC encrypt" : "AES-128-CBC decrypt"
        guard let ctx = EVP_CIPHER_CTX_new() else { throw VaultError.openSSL("\(name): EVP_CIPHER_CTX_new") }
        // EVP_CIPHER_CTX_free also cleanses the expanded key schedule.
        defer { EVP_CIPHER_CTX_free(ctx) }

        guard EVP_CipherInit_ex(ctx, EVP_aes_128_cbc(), nil, key, iv, encrypt ? 1 : 0) == 1 else {
            throw VaultError.openSSL("\(name): EVP_CipherInit_ex")
        }
        if padding == .none {
            EVP_CIPHER_CTX_set_padding(ctx, 0)
        }

        return try [UInt8](unsafeUninitializedCapacity: capacity) { output, initialized in
            guard let out = output.baseAddress else { return }
            var written = 0
            var offset = 0
            // EVP lengths are Int32: feed the input in whole-block chunks below that limit so
            // inputs of any size work.
            let chunk = Int(Int32.max) / blockSize * blockSize
            while offset < input.count {
                let length = min(chunk, input.count - offset)
                var outLength: Int32 = 0
                let source = input.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self)
                guard EVP_CipherUpdate(ctx, out + written, &outLength, source, Int32(length)) == 1 else {
                    throw VaultError.openSSL("\(name): EVP_CipherUpdate")
                }
                written += Int(outLength)
                offset += length
            }
            var finalLength: Int32 = 0
            guard EVP_CipherFinal_ex(ctx, out + written, &finalLength) == 1 else {
                if !encrypt {
                    ERR_clear_error()
                    throw VaultError("\(name) failed: bad padding (wrong key or IV, or corrupted data)")
                }
                throw VaultError.openSSL("\(name): EVP_CipherFinal_ex")
            }
            written += Int(finalLength)
            initialized = written
        }
    }
}
