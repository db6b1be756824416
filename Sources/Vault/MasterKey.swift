import COpenSSL
import Foundation

/// The 256-bit master key (key-encryption key) that wraps every content key.
///
/// The key bytes never leave this type except through ``base64EncodedKey()``; errors and
/// descriptions name the key only by its ``id``.
public struct MasterKey: Sendable {
    /// The environment variable holding the base64 master key.
    public static let environmentVariable = "STREAMGATE_MASTER_KEY"
    /// The environment variable naming a file that holds the master key.
    public static let fileEnvironmentVariable = "STREAMGATE_MASTER_KEY_FILE"

    /// 16 lowercase hex characters: the first 8 bytes of HMAC-SHA256(key, "streamgate master key id").
    /// Not secret; it tells which master key wrapped a content key, so keys can rotate.
    public let id: String
    private let key: [UInt8]

    /// Creates a master key from exactly 32 bytes.
    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else {
            throw VaultError("master key must be 32 bytes, got \(bytes.count)")
        }
        key = bytes
        id = try Self.identifier(for: bytes)
    }

    /// Creates a master key from base64 text. `source` says where the text came from (an
    /// environment variable, a file) so a bad key can be found without printing it.
    public init(base64: String, source: String) throws {
        let text = base64.trimmingCharacters(in: .whitespacesAndNewlines)
        guard var data = Data(base64Encoded: text) else {
            throw VaultError("\(source): not valid base64")
        }
        defer { Self.cleanse(&data) }
        guard data.count == 32 else {
            throw VaultError("\(source): decodes to \(data.count) bytes, need 32")
        }
        try self.init(bytes: [UInt8](data))
    }

    /// A new random master key, for development setups that have none yet.
    public static func generate() throws -> MasterKey {
        try MasterKey(bytes: SecureRandom.bytes(32))
    }

    /// The key as base64, the form ``init(base64:source:)`` and `STREAMGATE_MASTER_KEY` take.
    /// This is the secret itself: only for writing a freshly generated key to its store.
    public func base64EncodedKey() -> String {
        Data(key).base64EncodedString()
    }

    /// A key for one `purpose` alone (HMAC-SHA256 of "streamgate <purpose> v1" under the master
    /// key): what it signs says nothing about the master key or its other uses.
    public func derivedKey(for purpose: String) -> [UInt8] {
        Digest.hmacSHA256(key: key, message: Array("streamgate \(purpose) v1".utf8))
    }

    /// Loads the master key.
    ///
    /// `keyFile`, when given, wins (it is an explicit command-line choice). Otherwise exactly one of
    /// `STREAMGATE_MASTER_KEY` (base64) and `STREAMGATE_MASTER_KEY_FILE` must be set. A key file
    /// holds base64 text (surrounding whitespace ignored) or exactly 32 raw bytes.
    public static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        keyFile: String? = nil
    ) throws -> MasterKey {
        if let keyFile {
            return try load(file: keyFile)
        }
        let inline = nonEmpty(environment[environmentVariable])
        let file = nonEmpty(environment[fileEnvironmentVariable])
        switch (inline, file) {
        case (let value?, nil):
            return try MasterKey(base64: value, source: environmentVariable)
        case (nil, let path?):
            return try load(file: path)
        case (_?, _?):
            // Two sources that may disagree: refuse rather than silently pick one.
            throw VaultError("both \(environmentVariable) and \(fileEnvironmentVariable) are set; set only one")
        case (nil, nil):
            throw VaultError("no master key: set \(environmentVariable) (base64 of 32 bytes) or pass --master-key-file")
        }
    }

    /// Loads a key file: exactly 32 raw bytes, or base64 text.
    static func load(file path: String) throws -> MasterKey {
        var data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw VaultError("master key file \(path): cannot read: \(readFailureReason(error))")
        }
        defer { cleanse(&data) }
        // Base64 of 32 bytes is 44 characters, so a 32-byte file can only be the raw key.
        if data.count == 32 {
            return try MasterKey(bytes: [UInt8](data))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw VaultError("master key file \(path): not valid base64")
        }
        return try MasterKey(base64: text, source: "master key file \(path)")
    }

    /// Wraps a content key with AES-256-GCM under a fresh random nonce.
    ///
    /// `context` (for example the asset id) is bound into the authenticated data together with
    /// both key ids, so a wrapped key copied to another asset or relabelled does not unwrap.
    public func wrap(_ key: ContentKey, context: String) throws -> WrappedKey {
        let nonce = try SecureRandom.bytes(AES256GCM.nonceLength)
        let sealed = try AES256GCM.seal(key.bytes, key: self.key, nonce: nonce, aad: Self.aad(masterKeyID: id, keyID: key.id, context: context))
        return try WrappedKey(masterKeyID: id, keyID: key.id, nonce: nonce, ciphertext: sealed.ciphertext, tag: sealed.tag)
    }

    /// Unwraps a content key, verifying the GCM tag over the key ids and `context`.
    public func unwrap(_ wrapped: WrappedKey, context: String) throws -> ContentKey {
        guard wrapped.masterKeyID == id else {
            throw VaultError("content key \(wrapped.keyID) is wrapped by master key \(wrapped.masterKeyID), not by master key \(id)")
        }
        let aad = Self.aad(masterKeyID: id, keyID: wrapped.keyID, context: context)
        guard var bytes = try AES256GCM.open(wrapped.ciphertext, tag: wrapped.tag, key: key, nonce: wrapped.nonce, aad: aad) else {
            throw VaultError("content key \(wrapped.keyID): authentication failed")
        }
        defer { OPENSSL_cleanse(&bytes, bytes.count) }
        return try ContentKey(id: wrapped.keyID, bytes: bytes)
    }

    /// Wraps a 256-bit data key (such as a sealed source's) with AES-256-GCM under a fresh nonce.
    ///
    /// `context` is bound into the authenticated data, after a label and this master key's id
    /// that keep data-key wraps apart from content-key wraps.
    func wrap(dataKey: [UInt8], context: [UInt8]) throws -> WrappedDataKey {
        guard dataKey.count == WrappedDataKey.keyLength else {
            throw VaultError("data key must be \(WrappedDataKey.keyLength) bytes, got \(dataKey.count)")
        }
        let nonce = try SecureRandom.bytes(AES256GCM.nonceLength)
        let sealed = try AES256GCM.seal(dataKey, key: key, nonce: nonce, aad: Self.dataKeyAAD(masterKeyID: id, context: context))
        return WrappedDataKey(masterKeyID: id, nonce: nonce, ciphertext: sealed.ciphertext, tag: sealed.tag)
    }

    /// Unwraps a data key; nil when the tag does not verify over this key's id and `context`,
    /// so the caller can say which file failed.
    func unwrap(_ wrapped: WrappedDataKey, context: [UInt8]) throws -> [UInt8]? {
        guard wrapped.masterKeyID == id else { return nil }
        return try AES256GCM.open(
            wrapped.ciphertext, tag: wrapped.tag, key: key, nonce: wrapped.nonce,
            aad: Self.dataKeyAAD(masterKeyID: id, context: context)
        )
    }

    private static func dataKeyAAD(masterKeyID: String, context: [UInt8]) -> [UInt8] {
        Array("streamgate/data-key/v1|\(masterKeyID)|".utf8) + context
    }

    static func aad(masterKeyID: String, keyID: String, context: String) -> [UInt8] {
        Array("streamgate/v1|\(masterKeyID)|\(keyID)|\(context)".utf8)
    }

    private static func identifier(for key: [UInt8]) throws -> String {
        let label = Array("streamgate master key id".utf8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard HMAC(EVP_sha256(), key, Int32(key.count), label, label.count, &digest, &length) != nil, length == 32 else {
            throw VaultError.openSSL("master key id: HMAC-SHA256")
        }
        return Hex.encode(digest.prefix(8))
    }

    /// Foundation's own message for a failed read is vague ("The file doesn't exist"); the
    /// underlying POSIX error says exactly what went wrong.
    private static func readFailureReason(_ error: any Error) -> String {
        if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? POSIXError {
            return String(cString: strerror(underlying.code.rawValue))
        }
        return error.localizedDescription
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return nil }
        return value
    }

    private static func cleanse(_ data: inout Data) {
        data.withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress { OPENSSL_cleanse(base, buffer.count) }
        }
    }
}

extension MasterKey: CustomStringConvertible {
    /// Names the key by its identifier only.
    public var description: String { "MasterKey(\(id))" }
}
