import COpenSSL

/// AES-256-GCM for wrapping content keys. Internal: the public surface is `MasterKey.wrap`.
enum AES256GCM {
    static let nonceLength = 12
    static let tagLength = 16

    static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> (ciphertext: [UInt8], tag: [UInt8]) {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw VaultError.openSSL("wrap: EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceLength), nil) == 1,
              EVP_EncryptInit_ex(ctx, nil, nil, key, nonce) == 1
        else { throw VaultError.openSSL("wrap: EVP_EncryptInit_ex") }

        var length: Int32 = 0
        guard EVP_EncryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1 else {
            throw VaultError.openSSL("wrap: EVP_EncryptUpdate (AAD)")
        }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count)
        let sealed = ciphertext.withUnsafeMutableBufferPointer { out in
            var finalLength: Int32 = 0
            return EVP_EncryptUpdate(ctx, out.baseAddress, &length, plaintext, Int32(plaintext.count)) == 1
                && EVP_EncryptFinal_ex(ctx, out.baseAddress! + Int(length), &finalLength) == 1
        }
        guard sealed else { throw VaultError.openSSL("wrap: EVP_EncryptUpdate") }

        var tag = [UInt8](repeating: 0, count: tagLength)
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(tagLength), &tag) == 1 else {
            throw VaultError.openSSL("wrap: EVP_CTRL_GCM_GET_TAG")
        }
        return (ciphertext, tag)
    }

    /// Returns nil when the tag does not verify, so the caller can name what failed.
    static func open(_ ciphertext: [UInt8], tag: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8]? {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw VaultError.openSSL("unwrap: EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceLength), nil) == 1,
              EVP_DecryptInit_ex(ctx, nil, nil, key, nonce) == 1
        else { throw VaultError.openSSL("unwrap: EVP_DecryptInit_ex") }

        var length: Int32 = 0
        guard EVP_DecryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1 else {
            throw VaultError.openSSL("unwrap: EVP_DecryptUpdate (AAD)")
        }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count)
        guard EVP_DecryptUpdate(ctx, &plaintext, &length, ciphertext, Int32(ciphertext.count)) == 1 else {
            throw VaultError.openSSL("unwrap: EVP_DecryptUpdate")
        }
        var expectedTag = tag
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(tagLength), &expectedTag) == 1 else {
            throw VaultError.openSSL("unwrap: EVP_CTRL_GCM_SET_TAG")
        }
        let verified = plaintext.withUnsafeMutableBufferPointer { buffer in
            var finalLength: Int32 = 0
            return EVP_DecryptFinal_ex(ctx, buffer.baseAddress! + Int(length), &finalLength) == 1
        }
        guard verified else {
            // GCM decrypts before it verifies: never let unauthenticated key bytes linger.
            OPENSSL_cleanse(&plaintext, plaintext.count)
            ERR_clear_error()
            return nil
        }
        return plaintext
    }
}
