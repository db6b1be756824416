import Foundation
import Testing
@testable import Vault

private func flipBit(_ bytes: [UInt8], at index: Int = 0) -> [UInt8] {
    var copy = bytes
    copy[index] ^= 0x01
    return copy
}

private func message(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return "\(error)"
    }
}

@Test func contentKeyGenerationAndValidation() throws {
    let a = try ContentKey.generate()
    let b = try ContentKey.generate()
    #expect(a.id.count == 32 && a.bytes.count == 16)
    #expect(a.id != b.id && a.bytes != b.bytes)
    #expect(a.id.allSatisfy { "0123456789abcdef".contains($0) })
    #expect(!"\(a)".contains(Data(a.bytes).base64EncodedString()))
    #expect(message { _ = try ContentKey(id: a.id, bytes: [1, 2]) } == "content key \(a.id) must be 16 bytes, got 2")
    #expect(message { _ = try ContentKey(id: "../etc/passwd", bytes: a.bytes) } != nil)
    #expect(message { _ = try ContentKey(id: a.id.uppercased(), bytes: a.bytes) } != nil)
}

@Test func masterKeyIDIsDerivedFromTheKey() throws {
    let key = try MasterKey(bytes: [UInt8](repeating: 0x42, count: 32))
    #expect(key.id.count == 16)
    #expect(key.id == (try MasterKey(bytes: [UInt8](repeating: 0x42, count: 32))).id)
    #expect(key.id != (try MasterKey(bytes: [UInt8](repeating: 0x43, count: 32))).id)
    // HMAC-SHA256(key = 32 x 0x00, "streamgate master key id"), first 8 bytes, computed with
    // `printf 'streamgate master key id' | openssl dgst -sha256 -mac HMAC -macopt hexkey:00…00`.
    #expect(try MasterKey(bytes: [UInt8](repeating: 0, count: 32)).id == zeroKeyID)
    #expect(message { _ = try MasterKey(bytes: [UInt8](repeating: 0, count: 31)) } == "master key must be 32 bytes, got 31")
}

@Test func wrapUnwrapRoundTrip() throws {
    let master = try MasterKey.generate()
    let key = try ContentKey.generate()
    let wrapped = try master.wrap(key, context: "asset-1")
    #expect(wrapped.version == 1)
    #expect(wrapped.masterKeyID == master.id)
    #expect(wrapped.keyID == key.id)
    #expect(wrapped.nonce.count == 12 && wrapped.ciphertext.count == 16 && wrapped.tag.count == 16)
    #expect(wrapped.ciphertext != key.bytes)
    #expect(try master.unwrap(wrapped, context: "asset-1") == key)
    // A fresh nonce every time: wrapping twice never produces the same ciphertext.
    let again = try master.wrap(key, context: "asset-1")
    #expect(again.nonce != wrapped.nonce && again.ciphertext != wrapped.ciphertext)
}

@Test func tamperingIsDetected() throws {
    let master = try MasterKey.generate()
    let key = try ContentKey.generate()
    let w = try master.wrap(key, context: "asset-1")
    let other = try ContentKey.generate()
    let expected = "content key \(w.keyID): authentication failed"

    let tampered: [(String, WrappedKey, String)] = [
        ("ciphertext", try WrappedKey(masterKeyID: w.masterKeyID, keyID: w.keyID, nonce: w.nonce, ciphertext: flipBit(w.ciphertext, at: 5), tag: w.tag), "asset-1"),
        ("tag", try WrappedKey(masterKeyID: w.masterKeyID, keyID: w.keyID, nonce: w.nonce, ciphertext: w.ciphertext, tag: flipBit(w.tag, at: 15)), "asset-1"),
        ("nonce", try WrappedKey(masterKeyID: w.masterKeyID, keyID: w.keyID, nonce: flipBit(w.nonce), ciphertext: w.ciphertext, tag: w.tag), "asset-1"),
        ("context", w, "asset-2"),
    ]
    for (what, wrapped, context) in tampered {
        #expect(message { _ = try master.unwrap(wrapped, context: context) } == expected, "tampered \(what)")
    }
    // Relabelling the wrapped key as another content key is caught too; the error names the claimed id.
    let relabelled = try WrappedKey(masterKeyID: w.masterKeyID, keyID: other.id, nonce: w.nonce, ciphertext: w.ciphertext, tag: w.tag)
    #expect(message { _ = try master.unwrap(relabelled, context: "asset-1") } == "content key \(other.id): authentication failed")
}

@Test func unwrapWithAnotherMasterKeyNamesBothIDs() throws {
    let a = try MasterKey.generate()
    let b = try MasterKey.generate()
    let key = try ContentKey.generate()
    let wrapped = try a.wrap(key, context: "x")
    #expect(message { _ = try b.unwrap(wrapped, context: "x") }
        == "content key \(key.id) is wrapped by master key \(a.id), not by master key \(b.id)")

    // Even when the id is forged to match, the tag check fails.
    let forged = try WrappedKey(masterKeyID: b.id, keyID: wrapped.keyID, nonce: wrapped.nonce, ciphertext: wrapped.ciphertext, tag: wrapped.tag)
    #expect(message { _ = try b.unwrap(forged, context: "x") } == "content key \(key.id): authentication failed")
}

@Test func keyringRotation() throws {
    let old = try MasterKey.generate()
    let new = try MasterKey.generate()
    let key = try ContentKey.generate()
    let wrappedBefore = try Keyring(current: old).wrap(key, context: "asset")

    let rotated = Keyring(current: new, previous: [old])
    #expect(try rotated.unwrap(wrappedBefore, context: "asset") == key)
    let wrappedAfter = try rotated.wrap(key, context: "asset")
    #expect(wrappedAfter.masterKeyID == new.id)
    #expect(try rotated.unwrap(wrappedAfter, context: "asset") == key)

    // Once the old key is dropped from the ring, its keys no longer unwrap, and the error says which key is missing.
    let error = message { _ = try Keyring(current: new).unwrap(wrappedBefore, context: "asset") }
    #expect(error?.contains("wrapped by master key \(old.id), which is not in the keyring (known: \(new.id))") == true)
}

@Test func keyringLoadsPreviousKeysFromEnvironment() throws {
    let current = try MasterKey.generate()
    let old1 = try MasterKey.generate()
    let old2 = try MasterKey.generate()
    let environment = [
        "STREAMGATE_MASTER_KEY": current.base64EncodedKey(),
        "STREAMGATE_PREVIOUS_MASTER_KEYS": "\(old1.base64EncodedKey()), \(old2.base64EncodedKey()),",
    ]
    let ring = try Keyring.load(environment: environment)
    #expect(ring.current.id == current.id)
    #expect(ring.previous.map(\.id) == [old1.id, old2.id])
    let key = try ContentKey.generate()
    #expect(try ring.unwrap(old2.wrap(key, context: "c"), context: "c") == key)

    var bad = environment
    bad["STREAMGATE_PREVIOUS_MASTER_KEYS"] = "\(old1.base64EncodedKey()),AAAA"
    #expect(message { _ = try Keyring.load(environment: bad) } == "STREAMGATE_PREVIOUS_MASTER_KEYS entry 2: decodes to 3 bytes, need 32")
}

@Test func serializedRoundTrip() throws {
    let master = try MasterKey.generate()
    let wrapped = try master.wrap(ContentKey.generate(), context: "a")
    let bytes = wrapped.serialized()
    let text = String(decoding: bytes, as: UTF8.self)
    #expect(!text.contains("\n") && !text.contains(" "))
    #expect(text.contains("\"nonce\":\"\(Data(wrapped.nonce).base64EncodedString())\""))
    #expect(text.hasPrefix("{\"ciphertext\":"))
    let parsed = try WrappedKey(serialized: bytes)
    #expect(parsed == wrapped)
    #expect(parsed.serialized() == bytes)
}

@Test func malformedSerializedInputIsRejected() throws {
    let wrapped = try MasterKey.generate().wrap(ContentKey.generate(), context: "a")
    let object = try JSONSerialization.jsonObject(with: Data(wrapped.serialized())) as! [String: Any]
    func variant(_ change: (inout [String: Any]) -> Void) -> [UInt8] {
        var copy = object
        change(&copy)
        return Array(try! JSONSerialization.data(withJSONObject: copy))
    }
    let cases: [([UInt8], String)] = [
        (Array("not json".utf8), "wrapped key: not valid JSON"),
        (Array("[1,2]".utf8), "wrapped key: not a JSON object"),
        (variant { $0["version"] = 2 }, "wrapped key: field 'version' is 2, only 1 is supported"),
        (variant { $0["version"] = "1" }, "wrapped key: field 'version' has the wrong type"),
        (variant { $0["tag"] = nil }, "wrapped key: missing field 'tag'"),
        (variant { $0["nonce"] = Data(count: 11).base64EncodedString() }, "wrapped key: field 'nonce' must be 12 bytes, got 11"),
        (variant { $0["ciphertext"] = Data(count: 32).base64EncodedString() }, "wrapped key: field 'ciphertext' must be 16 bytes, got 32"),
        (variant { $0["tag"] = "%%%" }, "wrapped key: field 'tag' is not valid base64"),
        (variant { $0["keyID"] = "../../etc/passwd" }, "wrapped key: field 'keyID' must be 32 lowercase hex characters"),
        (variant { $0["masterKeyID"] = 7 }, "wrapped key: field 'masterKeyID' has the wrong type"),
    ]
    for (input, expected) in cases {
        #expect(message { _ = try WrappedKey(serialized: input) } == expected)
    }
}

/// The expected id of the all-zero master key (independently computed with the openssl CLI).
private let zeroKeyID = "68e06bef16158f48"
