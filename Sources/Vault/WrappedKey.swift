import Foundation

/// A content key wrapped by a master key with AES-256-GCM: what is stored on disk as
/// `keys/<id>.key`. Every field is validated on creation and decoding, so a value of this type
/// is always well-formed.
public struct WrappedKey: Sendable, Equatable, Codable {
    /// The only format version this code writes and reads.
    public static let currentVersion = 1

    /// The format version, 1.
    public let version: Int
    /// Which master key wrapped this key (16 lowercase hex characters).
    public let masterKeyID: String
    /// The content key's id (32 lowercase hex characters).
    public let keyID: String
    /// The 12-byte GCM nonce.
    public let nonce: [UInt8]
    /// The 16-byte encrypted content key.
    public let ciphertext: [UInt8]
    /// The 16-byte GCM tag.
    public let tag: [UInt8]

    /// Creates a wrapped key from its parts, validating each one.
    public init(masterKeyID: String, keyID: String, nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8]) throws {
        try Self.check(Hex.isLowercase(masterKeyID, count: 16), field: "masterKeyID", "must be 16 lowercase hex characters")
        // The key id becomes a file name, so it must never carry a path.
        try Self.check(Hex.isLowercase(keyID, count: 32), field: "keyID", "must be 32 lowercase hex characters")
        try Self.check(nonce.count == 12, field: "nonce", "must be 12 bytes, got \(nonce.count)")
        try Self.check(ciphertext.count == 16, field: "ciphertext", "must be 16 bytes, got \(ciphertext.count)")
        try Self.check(tag.count == 16, field: "tag", "must be 16 bytes, got \(tag.count)")
        self.version = Self.currentVersion
        self.masterKeyID = masterKeyID
        self.keyID = keyID
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.tag = tag
    }

    /// Compact JSON with base64 byte fields and sorted keys, so the same key always serializes
    /// to the same bytes.
    public func serialized() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and an integer into JSON cannot fail.
        return try! Array(encoder.encode(self))
    }

    /// Parses ``serialized()`` output strictly: wrong JSON, a missing field, a wrong type, an
    /// unknown version or a wrong length is an error naming the field.
    public init(serialized: [UInt8]) throws {
        do {
            self = try JSONDecoder().decode(WrappedKey.self, from: Data(serialized))
        } catch let error as VaultError {
            throw error
        } catch DecodingError.keyNotFound(let key, _) {
            throw VaultError("wrapped key: missing field '\(key.stringValue)'")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            guard let field = context.codingPath.last?.stringValue else {
                throw VaultError("wrapped key: not a JSON object")
            }
            throw VaultError("wrapped key: field '\(field)' has the wrong type")
        } catch {
            throw VaultError("wrapped key: not valid JSON")
        }
    }

    private enum CodingKeys: String, CodingKey {
        case version, masterKeyID, keyID, nonce, ciphertext, tag
    }

    /// Decodes and validates; byte fields are base64 strings.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let version = try container.decode(Int.self, forKey: .version)
        try Self.check(version == Self.currentVersion, field: "version", "is \(version), only \(Self.currentVersion) is supported")
        func bytes(_ key: CodingKeys) throws -> [UInt8] {
            let text = try container.decode(String.self, forKey: key)
            guard let data = Data(base64Encoded: text) else {
                throw VaultError("wrapped key: field '\(key.stringValue)' is not valid base64")
            }
            return [UInt8](data)
        }
        try self.init(
            masterKeyID: container.decode(String.self, forKey: .masterKeyID),
            keyID: container.decode(String.self, forKey: .keyID),
            nonce: bytes(.nonce), ciphertext: bytes(.ciphertext), tag: bytes(.tag)
        )
    }

    /// Encodes with byte fields as base64 strings.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .version)
        try container.encode(masterKeyID, forKey: .masterKeyID)
        try container.encode(keyID, forKey: .keyID)
        try container.encode(Data(nonce).base64EncodedString(), forKey: .nonce)
        try container.encode(Data(ciphertext).base64EncodedString(), forKey: .ciphertext)
        try container.encode(Data(tag).base64EncodedString(), forKey: .tag)
    }

    private static func check(_ condition: Bool, field: String, _ problem: @autoclosure () -> String) throws {
        guard condition else { throw VaultError("wrapped key: field '\(field)' \(problem())") }
    }
}
