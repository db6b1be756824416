import Testing
@testable import Vault

private func hex(_ string: String) -> [UInt8] {
    let digits = Array(string.filter { !$0.isWhitespace }.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

/// NIST SP 800-38A, appendix F.2.1 / F.2.2 (CBC-AES128).
private enum SP80038A {
    static let key = hex("2b7e151628aed2a6abf7158809cf4f3c")
    static let iv = hex("000102030405060708090a0b0c0d0e0f")
    static let plaintext = hex("""
        6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
        30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710
        """)
    static let ciphertext = hex("""
        7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
        73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7
        """)
}

@Test func encryptMatchesSP80038AF21() throws {
    let output = try AES128CBC.encrypt(SP80038A.plaintext, key: SP80038A.key, iv: SP80038A.iv)
    // The API pads: 64 bytes of plaintext gain a full block of PKCS7 padding.
    #expect(output.count == 80)
    #expect(Array(output.prefix(64)) == SP80038A.ciphertext)
    #expect(try AES128CBC.decrypt(output, key: SP80038A.key, iv: SP80038A.iv) == SP80038A.plaintext)
}

@Test func unpaddedEncryptMatchesSP80038AF21() throws {
    let output = try AES128CBC.encrypt(SP80038A.plaintext, key: SP80038A.key, iv: SP80038A.iv, padding: .none)
    #expect(output == SP80038A.ciphertext)
}

@Test func unpaddedDecryptMatchesSP80038AF22() throws {
    let output = try AES128CBC.decrypt(SP80038A.ciphertext, key: SP80038A.key, iv: SP80038A.iv, padding: .none)
    #expect(output == SP80038A.plaintext)
}

@Test(arguments: [0, 1, 15, 16, 17, 31, 32, 1000])
func pkcs7PaddingLengths(length: Int) throws {
    let key = try SecureRandom.bytes(16)
    let iv = try SecureRandom.bytes(16)
    let plaintext = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    let ciphertext = try AES128CBC.encrypt(plaintext, key: key, iv: iv)
    #expect(ciphertext.count == AES128CBC.ciphertextLength(plaintextLength: length))
    #expect(ciphertext.count == (length / 16 + 1) * 16)
    // The padding bytes are visible when decrypting without removing them.
    let raw = try AES128CBC.decrypt(ciphertext, key: key, iv: iv, padding: .none)
    let pad = 16 - length % 16
    #expect(Array(raw.suffix(pad)) == [UInt8](repeating: UInt8(pad), count: pad))
    #expect(try AES128CBC.decrypt(ciphertext, key: key, iv: iv) == plaintext)
}

@Test func ciphertextLengthFormula() {
    #expect(AES128CBC.ciphertextLength(plaintextLength: 0) == 16)
    #expect(AES128CBC.ciphertextLength(plaintextLength: 15) == 16)
    #expect(AES128CBC.ciphertextLength(plaintextLength: 16) == 32)
    #expect(AES128CBC.ciphertextLength(plaintextLength: 188 * 1000) == 188_016)
}

@Test func rawBufferEncryptEqualsArrayEncryptForLargeSegment() throws {
    let key = try SecureRandom.bytes(16)
    let iv = try SecureRandom.bytes(16)
    let segment = try SecureRandom.bytes(3 * 1024 * 1024 + 5)
    let fromBuffer = try segment.withUnsafeBytes { try AES128CBC.encrypt($0, key: key, iv: iv) }
    #expect(fromBuffer == (try AES128CBC.encrypt(segment, key: key, iv: iv)))
    #expect(fromBuffer.count == AES128CBC.ciphertextLength(plaintextLength: segment.count))
    #expect(try AES128CBC.decrypt(fromBuffer, key: key, iv: iv) == segment)
}

@Test func wrongKeyAndIVLengthsAreRejected() throws {
    let good = [UInt8](repeating: 1, count: 16)
    #expect(throws: VaultError.self) { try AES128CBC.encrypt([1, 2, 3], key: [UInt8](repeating: 0, count: 32), iv: good) }
    do {
        _ = try AES128CBC.encrypt([1, 2, 3], key: [UInt8](repeating: 0, count: 15), iv: good)
        Issue.record("expected an error")
    } catch let error as VaultError {
        #expect(error.description == "AES-128-CBC encrypt: key must be 16 bytes, got 15")
    }
    do {
        _ = try AES128CBC.decrypt(good, key: good, iv: [0])
        Issue.record("expected an error")
    } catch let error as VaultError {
        #expect(error.description == "AES-128-CBC decrypt: IV must be 16 bytes, got 1")
    }
}

@Test func malformedCiphertextIsRejected() throws {
    let key = [UInt8](repeating: 1, count: 16)
    let iv = [UInt8](repeating: 2, count: 16)
    let error = #expect(throws: VaultError.self) { try AES128CBC.decrypt([UInt8](repeating: 0, count: 17), key: key, iv: iv) }
    #expect(error?.description.contains("multiple of 16 bytes, got 17") == true)
    #expect(throws: VaultError.self) { try AES128CBC.decrypt([], key: key, iv: iv) }
    // A wrong key almost always leaves invalid padding behind; it must not pass silently.
    let ciphertext = try AES128CBC.encrypt(Array("segment".utf8), key: key, iv: iv)
    let wrong = #expect(throws: VaultError.self) { try AES128CBC.decrypt(ciphertext, key: [UInt8](repeating: 9, count: 16), iv: iv) }
    #expect(wrong?.description.contains("bad padding") == true)
    #expect(throws: VaultError.self) { try AES128CBC.encrypt([1, 2, 3], key: key, iv: iv, padding: .none) }
}

@Test func secureRandomReturnsDistinctBytes() throws {
    let a = try SecureRandom.bytes(32)
    let b = try SecureRandom.bytes(32)
    #expect(a.count == 32)
    #expect(a != b)
    #expect(try SecureRandom.bytes(0).isEmpty)
    #expect(throws: VaultError.self) { try SecureRandom.bytes(-1) }
}
