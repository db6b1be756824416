import COpenSSL

/// AES-256-GCM with a 12-byte nonce and a 16-byte tag. Internal: the public surfaces are
/// `MasterKey.wrap` (content keys, data keys) and the sealed-source reader and writer.
///
/// The buffer-based functions are the implementation; the array ones are conveniences for small
/// inputs such as keys. `operation` names the caller's step in OpenSSL error messages.
enum AES256GCM {
    static let keyLength = 32
    static let nonceLength = 12
    static let tagLength = 16

    /// Encrypts `plaintext` into `ciphertext` (same length) and writes the tag into `tag`.
    static func seal(
        _ plaintext: UnsafeRawBufferPointer, key: [UInt8], nonce: [UInt8], aad: UnsafeRawBufferPointer,
        ciphertext: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawBufferPointer, operation: String = "wrap"
    ) throws {
        try validate(key: key, nonce: nonce, length: plaintext.count, operation: operation)
        precondition(ciphertext.count == plaintext.count && tag.count == tagLength, "AES-256-GCM seal: output buffers have the wrong size")
        guard let ctx = EVP_CIPHER_CTX_new() else { throw VaultError.openSSL("\(operation): EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceLength), nil) == 1,
              EVP_EncryptInit_ex(ctx, nil, nil, key, nonce) == 1
        else { throw VaultError.openSSL("\(operation): EVP_EncryptInit_ex") }

        var length: Int32 = 0
        // An output pointer of NULL means "this is AAD" to EVP, so empty buffers (whose base
        // address may be nil) are given a scratch byte instead.
        var scratch: UInt8 = 0
        try withBytes(aad) { aadBase in
            guard EVP_EncryptUpdate(ctx, nil, &length, aadBase, Int32(aad.count)) == 1 else {
                throw VaultError.openSSL("\(operation): EVP_EncryptUpdate (AAD)")
            }
        }
        let out = ciphertext.baseAddress?.assumingMemoryBound(to: UInt8.self)
        try withBytes(plaintext) { input in
            try withUnsafeMutablePointer(to: &scratch) { scratchPointer in
                let target = out ?? scratchPointer
                var finalLength: Int32 = 0
                guard EVP_EncryptUpdate(ctx, target, &length, input, Int32(plaintext.count)) == 1,
                      EVP_EncryptFinal_ex(ctx, out.map { $0 + Int(length) } ?? scratchPointer, &finalLength) == 1
                else { throw VaultError.openSSL("\(operation): EVP_EncryptUpdate") }
            }
        }
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(tagLength), tag.baseAddress) == 1 else {
            throw VaultError.openSSL("\(operation): EVP_CTRL_GCM_GET_TAG")
        }
    }

    /// Decrypts `ciphertext` into `plaintext` (same length) and verifies `tag`. Returns false when
    /// the tag does not verify, so the caller can name what failed; `plaintext` is then zeroed.
    static func open(
        _ ciphertext: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer, key: [UInt8], nonce: [UInt8],
        aad: UnsafeRawBufferPointer, plaintext: UnsafeMutableRawBufferPointer, operation: String = "unwrap"
    ) throws -> Bool {
        try validate(key: key, nonce: nonce, length: ciphertext.count, operation: operation)
        precondition(plaintext.count == ciphertext.count, "AES-256-GCM open: output buffer has the wrong size")
        guard tag.count == tagLength else { return false }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw VaultError.openSSL("\(operation): EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceLength), nil) == 1,
              EVP_DecryptInit_ex(ctx, nil, nil, key, nonce) == 1
        else { throw VaultError.openSSL("\(operation): EVP_DecryptInit_ex") }

        var length: Int32 = 0
        try withBytes(aad) { aadBase in
            guard EVP_DecryptUpdate(ctx, nil, &length, aadBase, Int32(aad.count)) == 1 else {
                throw VaultError.openSSL("\(operation): EVP_DecryptUpdate (AAD)")
            }
        }
        var scratch: UInt8 = 0
        let out = plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let verified = try withBytes(ciphertext) { input in
            try withUnsafeMutablePointer(to: &scratch) { scratchPointer in
                guard EVP_DecryptUpdate(ctx, out ?? scratchPointer, &length, input, Int32(ciphertext.count)) == 1 else {
                    throw VaultError.openSSL("\(operation): EVP_DecryptUpdate")
                }
                var expectedTag = [UInt8](tag)
                guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(tagLength), &expectedTag) == 1 else {
                    throw VaultError.openSSL("\(operation): EVP_CTRL_GCM_SET_TAG")
                }
                var finalLength: Int32 = 0
                return EVP_DecryptFinal_ex(ctx, out.map { $0 + Int(length) } ?? scratchPointer, &finalLength) == 1
            }
        }
        guard verified else {
            // GCM decrypts before it verifies: never let unauthenticated bytes linger.
            if let base = plaintext.baseAddress { OPENSSL_cleanse(base, plaintext.count) }
            ERR_clear_error()
            return false
        }
        return true
    }

    static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> (ciphertext: [UInt8], tag: [UInt8]) {
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count)
        var tag = [UInt8](repeating: 0, count: tagLength)
        try plaintext.withUnsafeBytes { input in
            try aad.withUnsafeBytes { aadBytes in
                try ciphertext.withUnsafeMutableBytes { out in
                    try tag.withUnsafeMutableBytes { tagOut in
                        try seal(input, key: key, nonce: nonce, aad: aadBytes, ciphertext: out, tag: tagOut)
                    }
                }
            }
        }
        return (ciphertext, tag)
    }

    /// Returns nil when the tag does not verify, so the caller can name what failed.
    static func open(_ ciphertext: [UInt8], tag: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8]? {
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count)
        let verified = try ciphertext.withUnsafeBytes { input in
            try tag.withUnsafeBytes { tagBytes in
                try aad.withUnsafeBytes { aadBytes in
                    try plaintext.withUnsafeMutableBytes { out in
                        try open(input, tag: tagBytes, key: key, nonce: nonce, aad: aadBytes, plaintext: out)
                    }
                }
            }
        }
        return verified ? plaintext : nil
    }

    private static func validate(key: [UInt8], nonce: [UInt8], length: Int, operation: String) throws {
        guard key.count == keyLength else { throw VaultError("\(operation): AES-256-GCM key must be 32 bytes, got \(key.count)") }
        guard nonce.count == nonceLength else { throw VaultError("\(operation): AES-256-GCM nonce must be 12 bytes, got \(nonce.count)") }
        guard length <= Int(Int32.max) else { throw VaultError("\(operation): AES-256-GCM input of \(length) bytes is too long") }
    }

    /// Lends a typed base pointer for a possibly empty buffer: never nil, because EVP treats a
    /// NULL input with a zero length as valid only on some paths.
    private static func withBytes<R>(_ buffer: UnsafeRawBufferPointer, _ body: (UnsafePointer<UInt8>) throws -> R) rethrows -> R {
        if let base = buffer.baseAddress {
            return try body(base.assumingMemoryBound(to: UInt8.self))
        }
        var empty: UInt8 = 0
        return try withUnsafePointer(to: &empty) { try body($0) }
    }
}
